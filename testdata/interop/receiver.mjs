// A webhook receiver Herald did not write, for bench/interop_test.go: it
// verifies every request with the npm standardwebhooks package, answers 204
// when the signature is valid and 401 when not, and keeps count.
//
// Usage: node receiver.mjs HOST:PORT SECRET
// GET /counts answers {"verified": [webhook-id, ...], "rejected": n}.
import http from "node:http";
import { Webhook } from "standardwebhooks";

const [addr, secret] = process.argv.slice(2);
const [host, port] = addr.split(":");
const wh = new Webhook(secret);
const verified = [];
let rejected = 0;

http
  .createServer((req, res) => {
    if (req.method === "GET" && req.url === "/counts") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ verified, rejected }));
      return;
    }
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      try {
        wh.verify(body, req.headers);
        JSON.parse(body);
        verified.push(req.headers["webhook-id"]);
        res.writeHead(204).end();
      } catch (err) {
        rejected++;
        process.stderr.write(`rejected ${req.headers["webhook-id"]}: ${err.message}\n`);
        res.writeHead(401).end();
      }
    });
  })
  .listen(Number(port), host, () => process.stdout.write("listening\n"));
