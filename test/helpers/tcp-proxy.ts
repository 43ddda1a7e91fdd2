/** A TCP proxy in front of a real server, for failure tests: cut it, or hold the server's answers. */
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';

/** A TCP proxy to a server (PostgreSQL, Redis) that a test can cut and restore, or hold its answers back. */
export class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private held: Array<[Socket, Buffer]> | undefined;
  constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  async open(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = netConnect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.on('data', (d: Buffer) => (this.held ? this.held.push([client, d]) : client.write(d)));
      upstream.on('end', () => client.end());
    });
    await new Promise<void>((r) => (this.server as Server).listen(this.port, '127.0.0.1', r));
  }

  /** Queries still reach the database; its answers wait until release(). */
  hold(): void {
    this.held ??= [];
  }

  /** Whether an answer held back carries `text` (a row's value, as PostgreSQL's DataRow holds it). */
  holds(text: string): boolean {
    return (this.held ?? []).some(([, d]) => d.includes(text));
  }

  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const [client, d] of held) client.write(d);
  }

  /** Drops every connection and stops listening: the database is unreachable. */
  async cut(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
