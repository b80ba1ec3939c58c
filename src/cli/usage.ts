/** Usage text shared by `webgw help` and the pki commands (kept apart so help loads no PKI code). */
export const pkiUsage = `Usage:
  webgw pki init  --dir DIR [--name NAME] [--host NAME_OR_IP]... [--ca-validity 3650d] [--server-validity 90d]
      Creates DIR/ca.{crt,key} and the tunnel server certificate DIR/gateway.{crt,key}
      (for every --host; default: localhost and 127.0.0.1).
  webgw pki issue --dir DIR --out OUT [--http HOST]... [--https HOST]... [--tls HOST]...
                  [--tls-terminated HOST]... [--tcp PORT]... [--h2c HOST]... [--identity ID] [--validity 24h]
      Issues OUT/agent.{crt,key} with those grants from the CA in DIR, and copies DIR/ca.crt to OUT.
      --https: the gateway terminates TLS for HOST (a certificate in its certificatesDir) and
      serves it as HTTP by Host; without --http too, plain HTTP for HOST is redirected to HTTPS.
      --tls: passthrough by SNI. --tls-terminated: the gateway terminates and relays the plaintext.
      --h2c: HOST (also given as --http or --https) has a backend that speaks HTTP/2 without TLS
      (gRPC): the gateway talks HTTP/2 to it; clients may use HTTP/1.1 or HTTP/2.`;
