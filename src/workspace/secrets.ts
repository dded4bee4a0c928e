/**
 * Content-based secret detection: what a file holds, whatever it is called (`deploy_key.txt`,
 * `tls.key.bak`, a service-account JSON, a token in `.bashrc`, `aws.config`, a docker
 * `config.json`). The name rules (SECRET_PATTERNS in defaults.ts) catch the usual names; these
 * catch the rest. A file with a match is kept out of memory unless a `.mplusignore` rule names that
 * very path (`!docs/example-key.pem`), the same escape hatch as the name rules.
 *
 * Each detector is a regular expression without nested quantifiers (linear time on any input; a
 * file is at most 1 MiB when it gets here) aimed at formats with a fixed, unmistakable shape, so
 * ordinary code that merely talks about keys is not flagged.
 */

export interface SecretDetector {
  /** Shown to the user: "contains <kind>". */
  kind: string;
  re: RegExp;
}

export const SECRET_DETECTORS: readonly SecretDetector[] = [
  // PEM/OpenSSH/PGP private keys, encrypted or not (also inside JSON with \n escapes).
  { kind: 'a private key (PEM block)', re: /-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----/ },
  { kind: 'a PuTTY private key', re: /^PuTTY-User-Key-File-\d+:/m },
  // Google Cloud service-account key files.
  { kind: 'a cloud service-account key (JSON)', re: /"type"\s*:\s*"service_account"[\s\S]{0,4000}?"private_key(?:_id)?"\s*:/ },
  { kind: 'a cloud service-account key (JSON)', re: /"private_key_id"\s*:\s*"[0-9a-f]{32,}"/ },
  // AWS access key ids and secret keys as written in credentials/config files.
  { kind: 'an AWS access key', re: /\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|APKA)[0-9A-Z]{16}\b/ },
  { kind: 'an AWS secret key', re: /\baws_secret_access_key\s*[=:]\s*["']?[A-Za-z0-9/+]{40}\b/i },
  // Source-hosting and chat tokens.
  { kind: 'a GitHub token', re: /\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255})\b/ },
  { kind: 'a GitLab token', re: /\bglpat-[A-Za-z0-9_-]{20,}\b/ },
  { kind: 'a Slack token', re: /\bxox[abposr]-[A-Za-z0-9-]{10,}/ },
  { kind: 'a Slack webhook URL', re: /https:\/\/hooks\.slack\.com\/services\/T[A-Za-z0-9]+\/B[A-Za-z0-9]+\/[A-Za-z0-9]{16,}/ },
  // Package registries, payment and cloud API keys.
  { kind: 'an npm token', re: /\bnpm_[A-Za-z0-9]{36}\b/ },
  { kind: 'a registry auth token', re: /:_authToken\s*=\s*[^\s$]{16,}/ },
  { kind: 'a Stripe live key', re: /\b[rs]k_live_[0-9A-Za-z]{20,}\b/ },
  { kind: 'a Google API key', re: /\bAIza[0-9A-Za-z_-]{35}\b/ },
  { kind: 'an Azure storage key', re: /\bAccountKey=[A-Za-z0-9+/]{40,}={0,2}/ },
  // Docker's config.json: base64 user:password under "auths".
  { kind: 'registry credentials (docker auths)', re: /"auths"\s*:\s*\{[\s\S]{0,4000}?"auth"\s*:\s*"[A-Za-z0-9+/]{8,}={0,2}"/ },
  // Shell/env assignments of a credential-named variable to a literal (`export GITHUB_TOKEN=…`):
  // a name ending in TOKEN/SECRET/PASSWORD/API_KEY…, `=` with no spaces, 16+ characters with a
  // digit and a letter and no `$` (a reference to another variable is not a secret).
  {
    kind: 'a credential assignment',
    re: /^[ \t]*(?:export[ \t]+)?[A-Za-z_][A-Za-z0-9_]{0,60}(?:TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_?KEY|AUTH)=["']?(?=[^\s"'$]{0,200}[0-9])(?=[^\s"'$]{0,200}[A-Za-z])[^\s"'$]{16,}/mi,
  },
];

/** The first secret found in `text`, or null. */
export function findSecret(text: string): { kind: string; line: number } | null {
  for (const d of SECRET_DETECTORS) {
    const m = d.re.exec(text);
    if (m) {
      let line = 1;
      for (let i = text.indexOf('\n'); i >= 0 && i < m.index; i = text.indexOf('\n', i + 1)) line++;
      return { kind: d.kind, line };
    }
  }
  return null;
}
