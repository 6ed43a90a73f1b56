// Certificates for TLS tests, made with openssl (the same commands as the worked example in
// docs/OPERATIONS.md): a CA, a server certificate for 127.0.0.1/localhost signed by it, and
// a client certificate (for mutual TLS) signed by it.
import { execFileSync } from "node:child_process";
import path from "node:path";

export interface TestCerts {
  readonly caFile: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
}

export function hasOpenssl(): boolean {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

export function makeCerts(dir: string): TestCerts {
  const p = (f: string): string => path.join(dir, f);
  const run = (...args: string[]): void => void execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  // The CA.
  run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=paxosstore test CA", "-keyout", p("ca-key.pem"), "-out", p("ca.pem"));
  // The server's key and certificate, for the names clients dial.
  run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=nats", "-keyout", p("server-key.pem"), "-out", p("server.csr"));
  execFileSync("sh", ["-c", 'printf "subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n" > server.ext'], { cwd: dir });
  run("x509", "-req", "-in", p("server.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca-key.pem"), "-CAcreateserial", "-days", "30", "-extfile", p("server.ext"), "-out", p("server.pem"));
  // A client certificate (mutual TLS).
  run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=n1", "-keyout", p("client-key.pem"), "-out", p("client.csr"));
  execFileSync("sh", ["-c", 'printf "extendedKeyUsage=clientAuth\\n" > client.ext'], { cwd: dir });
  run("x509", "-req", "-in", p("client.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca-key.pem"), "-CAcreateserial", "-days", "30", "-extfile", p("client.ext"), "-out", p("client.pem"));
  return { caFile: p("ca.pem"), serverCert: p("server.pem"), serverKey: p("server-key.pem"), clientCert: p("client.pem"), clientKey: p("client-key.pem") };
}
