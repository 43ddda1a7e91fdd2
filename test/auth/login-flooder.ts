/**
 * A login flood from another process (the attacker is not the server's event loop): `node --import tsx
 * login-flooder.ts <baseUrl> <concurrency> <durationMs>` keeps that many wrong logins in flight, each
 * from its own forwarded address, and prints `{"<status>": count, …}` as JSON when done.
 */
const [url, concurrency = '200', durationMs = '3000'] = process.argv.slice(2);
const deadline = Date.now() + Number(durationMs);
const statuses: Record<string, number> = {};
let n = 0;

async function worker(): Promise<void> {
  while (Date.now() < deadline) {
    const i = n++;
    try {
      const res = await fetch(`${url}/api/v1/auth/login`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-forwarded-for': `10.${(i >> 8) & 255}.${i & 255}.1`,
        },
        body: JSON.stringify({ username: `flood-${i % 50}`, password: 'wrong-password' }),
      });
      await res.arrayBuffer();
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      // Hundreds in flight, not a busy loop of instant refusals: the test is about the hasher.
      await new Promise((r) => setTimeout(r, 100));
    } catch {
      statuses['error'] = (statuses['error'] ?? 0) + 1;
    }
  }
}

await Promise.all(Array.from({ length: Number(concurrency) }, worker));
process.stdout.write(JSON.stringify(statuses));
