// Preloaded with `node --import ./loopback.mjs`: makes every TCP server that
// is started without a host listen on 127.0.0.1 only, so test peers that do
// not take a host setting (such as server-everything's `app.listen(PORT)`)
// are not reachable from other machines.
import net from 'node:net';

const listen = net.Server.prototype.listen;

net.Server.prototype.listen = function loopbackListen(...args) {
  const [first] = args;
  if (first !== null && typeof first === 'object' && !Array.isArray(first)) {
    if (first.path === undefined && first.host === undefined && first.handle === undefined && first.fd === undefined) {
      args[0] = { ...first, host: '127.0.0.1' };
    }
  } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    if (typeof args[1] !== 'string') {
      args.splice(1, 0, '127.0.0.1');
    }
  }
  return listen.apply(this, args);
};
