/**
 * Peer (b): Socket.IO 4, websocket transport only, per-message deflate and HTTP compression off, one room
 * per user. Broadcasts go through `io.emit` (encoded and framed once by the adapter), per-user sends through
 * `io.to(room).emit`. Heartbeats are Engine.IO's own (pingInterval = the bench's heartbeat interval).
 */
import { createServer, type Server as HttpServer } from 'node:http';
import { Server } from 'socket.io';
import { exitOnSignal, peerEnv, peerHttpHandler } from './peer-http.ts';

const { port, heartbeatMs } = peerEnv();

const http: HttpServer = createServer(
  peerHttpHandler({
    broadcast(data) {
      io.emit('SYSTEM_NOTIFY', data);
      return io.engine.clientsCount;
    },
    send(userId, data) {
      io.to(`u${userId}`).emit('NEW_MESSAGE', data);
      return 1;
    },
  }),
);

// Requests are served only after listen(), below: `io` exists by then.
const io: Server = new Server(http, {
  transports: ['websocket'],
  perMessageDeflate: false,
  httpCompression: false,
  serveClient: false,
  maxHttpBufferSize: 65536,
  pingInterval: heartbeatMs,
  pingTimeout: heartbeatMs,
});
io.on('connection', (socket) => {
  void socket.join(`u${Number(socket.handshake.query['uid'])}`);
});

exitOnSignal();
http.listen(port, '127.0.0.1');
