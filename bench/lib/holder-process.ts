/** Child of backends.ts startHolder: accepts connections on loopback and keeps them open. */
import { createServer, type Socket } from 'node:net';

const open = new Set<Socket>();
const server = createServer((socket) => {
  open.add(socket);
  socket.on('error', () => socket.destroy());
  socket.on('data', () => {});
  socket.once('close', () => open.delete(socket));
});
server.listen({ port: 0, host: '127.0.0.1', backlog: 8192 }, () => {
  process.send!({ port: (server.address() as { port: number }).port });
});
process.on('message', () => process.send!({ count: open.size }));
process.on('disconnect', () => process.exit(0));
