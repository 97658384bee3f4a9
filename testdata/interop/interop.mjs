// Receivers and senders that Herald did not write, for signer/jwks/interop_test.go.
//
// Usage: node interop.mjs OP < request.json > response.json
// Bodies travel base64-encoded so every byte reaches the signer unchanged.
// A failed check exits 1 with the reason on stderr.
import crypto from "node:crypto";
import * as jose from "jose";
import { Webhook } from "standardwebhooks";

const b64url = (buf) => Buffer.from(buf).toString("base64url");
const bodyHash = (body) => b64url(crypto.createHash("sha256").update(body).digest());

// signedContent is the Standard Webhooks signing input, built independently of Herald.
const signedContent = (id, timestamp, body) =>
  Buffer.concat([Buffer.from(`${id}.${timestamp}.`), body]);

const ops = {
  // standardwebhooks checks a v1 signature Herald produced.
  async "sw-verify"({ secret, id, timestamp, signature, body }) {
    new Webhook(secret).verify(body, {
      "webhook-id": id,
      "webhook-timestamp": timestamp,
      "webhook-signature": signature,
    });
    return {};
  },

  // standardwebhooks signs for Herald to verify.
  async "sw-sign"({ secret, id, timestamp, body }) {
    return { signature: new Webhook(secret).sign(id, new Date(timestamp * 1000), body.toString()) };
  },

  // Node's crypto checks a v1a signature list against a whpk_ key.
  async "ed-verify"({ publicKey, id, timestamp, signature, body }) {
    const x = b64url(Buffer.from(publicKey.replace(/^whpk_/, ""), "base64"));
    const key = crypto.createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x }, format: "jwk" });
    const data = signedContent(id, timestamp, body);
    const ok = signature.split(" ").some((token) => {
      const [version, sig] = token.split(",");
      return version === "v1a" && crypto.verify(null, data, key, Buffer.from(sig, "base64"));
    });
    if (!ok) throw new Error("no matching v1a signature");
    return {};
  },

  // Node's crypto makes its own key pair and signs v1a for Herald to verify.
  async "ed-sign"({ id, timestamp, body }) {
    const { publicKey, privateKey } = crypto.generateKeyPairSync("ed25519");
    const raw = Buffer.from(publicKey.export({ format: "jwk" }).x, "base64url");
    const sig = crypto.sign(null, signedContent(id, timestamp, body), privateKey);
    return { publicKey: "whpk_" + raw.toString("base64"), signature: "v1a," + sig.toString("base64") };
  },

  // jose fetches Herald's JWKS and checks Herald's RS256 JWT, as any JOSE
  // receiver would; it also reports its own RFC 7638 thumbprint of every key.
  async "jose-verify"({ jwksURL, token, audience, issuer, id, body }) {
    const jwks = jose.createRemoteJWKSet(new URL(jwksURL));
    const { payload, protectedHeader } = await jose.jwtVerify(token, jwks, {
      algorithms: ["RS256"],
      audience,
      issuer,
      maxTokenAge: "5m",
      requiredClaims: ["iat", "exp", "jti", "body_sha256"],
    });
    if (payload.jti !== id) throw new Error(`jti ${payload.jti} != ${id}`);
    if (payload.body_sha256 !== bodyHash(body)) throw new Error("body_sha256 does not match the body");
    if (payload.exp - payload.iat > 300) throw new Error("exp more than 5 minutes after iat");
    const doc = await (await fetch(jwksURL)).json();
    const thumbprints = await Promise.all(
      doc.keys.map(async (k) => ({ kid: k.kid, thumbprint: await jose.calculateJwkThumbprint(k, "sha256") })),
    );
    return { kid: protectedHeader.kid, thumbprints };
  },

  // jose makes an RS256 key, exports it as a JWKS and signs a JWT in Herald's
  // claim layout for Herald to verify.
  async "jose-sign"({ id, timestamp, audience, issuer, body }) {
    const { publicKey, privateKey } = await jose.generateKeyPair("RS256", { extractable: true });
    const jwk = await jose.exportJWK(publicKey);
    jwk.kid = await jose.calculateJwkThumbprint(jwk, "sha256");
    jwk.alg = "RS256";
    jwk.use = "sig";
    const token = await new jose.SignJWT({ body_sha256: bodyHash(body) })
      .setProtectedHeader({ alg: "RS256", kid: jwk.kid, typ: "JWT" })
      .setIssuer(issuer)
      .setAudience(audience)
      .setJti(id)
      .setIssuedAt(timestamp)
      .setExpirationTime(timestamp + 300)
      .sign(privateKey);
    return { jwks: JSON.stringify({ keys: [jwk] }), token };
  },
};

const op = ops[process.argv[2]];
if (!op) {
  console.error(`unknown op ${process.argv[2]}; want one of ${Object.keys(ops).join(", ")}`);
  process.exit(2);
}
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const req = JSON.parse(Buffer.concat(chunks).toString());
req.body = Buffer.from(req.body ?? "", "base64");
try {
  process.stdout.write(JSON.stringify(await op(req)));
} catch (err) {
  console.error(err.message);
  process.exit(1);
}
