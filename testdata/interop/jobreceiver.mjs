// A webhook receiver Herald did not write, for examples/jobrunner (its tests
// and its README). It checks every request with code independent of Herald:
//
//   - v1 (HMAC) signatures with the npm standardwebhooks package, using the
//     secret registered for the request's path;
//   - v1a (Ed25519) signatures with Node's crypto, against the Ed25519 keys of
//     the sender's JWKS;
//   - RS256 JWTs with jose, against the same JWKS, requiring the JWKS URL's
//     origin as issuer, the request's URL as audience, webhook-id as jti and
//     the body's SHA-256 as body_sha256.
//
// It answers 204 when the signature is valid and 401 when not, and prints one
// line per request, then the body.
//
// Usage: node jobreceiver.mjs HOST:PORT [JWKS_URL]
//   Port 0 picks a free port; the first line printed is "listening HOST:PORT".
//   JWKS_URL is the sender's JWKS, for paths that are given none below.
//   POST /_paths {"/path": {"secret": "whsec_…"} or {"jwks": "URL"}, …}
//     sets what a path's requests are verified with.
//   GET /_received answers [{path, webhook_id, scheme, valid, error?, body}, …].
import crypto from "node:crypto";
import http from "node:http";
import * as jose from "jose";
import { Webhook } from "standardwebhooks";

const [addr, defaultJWKS] = process.argv.slice(2);
if (!addr) {
  console.error("usage: node jobreceiver.mjs HOST:PORT [JWKS_URL]");
  process.exit(2);
}
const [host, port] = addr.split(":");
const paths = {}; // path -> {secret} or {jwks}
const jwksSets = {}; // JWKS URL -> jose's cached key set
const received = [];

// verify checks a request's signature and returns the scheme it used.
async function verify(req, body) {
  const id = req.headers["webhook-id"];
  const timestamp = req.headers["webhook-timestamp"];
  const signature = req.headers["webhook-signature"] ?? "";
  const path = new URL(req.url, "http://receiver").pathname;
  const { secret, jwks: jwksURL = defaultJWKS } = paths[path] ?? {};
  if (signature.split(".").length === 3) {
    if (!jwksURL) throw new Error(`no JWKS for ${path}`);
    jwksSets[jwksURL] ??= jose.createRemoteJWKSet(new URL(jwksURL));
    const { payload } = await jose.jwtVerify(signature, jwksSets[jwksURL], {
      algorithms: ["RS256"],
      issuer: new URL(jwksURL).origin,
      audience: `http://${req.headers.host}${req.url}`,
      maxTokenAge: "5m",
      requiredClaims: ["iat", "exp", "jti", "body_sha256"],
    });
    if (payload.jti !== id) throw new Error(`jti ${payload.jti} is not webhook-id ${id}`);
    const hash = crypto.createHash("sha256").update(body).digest("base64url");
    if (payload.body_sha256 !== hash) throw new Error("body_sha256 does not match the body");
    return "jwt";
  }
  if (signature.includes("v1a,")) {
    if (!jwksURL) throw new Error(`no JWKS for ${path}`);
    if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) throw new Error("timestamp out of tolerance");
    const { keys } = await (await fetch(jwksURL)).json();
    const edKeys = keys
      .filter((k) => k.kty === "OKP" && k.crv === "Ed25519")
      .map((k) => crypto.createPublicKey({ key: k, format: "jwk" }));
    const content = Buffer.concat([Buffer.from(`${id}.${timestamp}.`), body]);
    const ok = signature.split(" ").some((token) => {
      const [version, sig] = token.split(",");
      return version === "v1a" && edKeys.some((key) => crypto.verify(null, content, key, Buffer.from(sig, "base64")));
    });
    if (!ok) throw new Error("no v1a signature matches a key of the JWKS");
    return "v1a";
  }
  if (!secret) throw new Error(`no secret for ${path}`);
  new Webhook(secret).verify(body.toString("utf8"), req.headers);
  return "v1";
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

const server = http.createServer(async (req, res) => {
  const body = await readBody(req);
  if (req.method === "POST" && req.url === "/_paths") {
    Object.assign(paths, JSON.parse(body.toString("utf8")));
    res.writeHead(204).end();
    return;
  }
  if (req.method === "GET" && req.url === "/_received") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(received));
    return;
  }
  const entry = { path: req.url, webhook_id: req.headers["webhook-id"], valid: false, body: body.toString("utf8") };
  try {
    entry.scheme = await verify(req, body);
    entry.valid = true;
  } catch (err) {
    entry.error = err.message;
  }
  received.push(entry);
  const verdict = entry.valid ? `valid ${entry.scheme}` : `INVALID: ${entry.error}`;
  process.stdout.write(`${req.method} ${req.url} webhook-id: ${entry.webhook_id} signature: ${verdict}\n${entry.body}\n\n`);
  res.writeHead(entry.valid ? 204 : 401).end();
});

server.listen(Number(port), host, () => {
  const a = server.address();
  process.stdout.write(`listening ${a.address}:${a.port}\n`);
});
