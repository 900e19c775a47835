// The trivial upstream API of bench/gateway: answers every request with a small JSON body.
import http from 'node:http';

const port = Number(process.env.PORT);
http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '11' });
    res.end('{"ok":true}');
  });
}).listen(port, '127.0.0.1');
