/**
 * Secrets in the shapes the detectors look for, assembled at run time so this repository's own
 * files hold none (they are fed when the repository feeds itself).
 */
const B = '-----BEGIN ';
const E = '-----END ';
const body = 'MIIEowIBAAKCAQEA7Qx3ZgYbqLsP1vWcR8tQ2n0uJ4kXo9aHdF6mBvT5yZLe1rUN\nc2VjcmV0LWtleS1ib2R5LWZvci10ZXN0cy1vbmx5LW5vdC1hLXJlYWwta2V5AAAA\n';

export const SAMPLES: Record<string, string> = {
  'deploy_key.txt': `${B}OPENSSH PRIVATE KEY-----\n${body}${E}OPENSSH PRIVATE KEY-----\n`,
  'certs/tls.key.bak': `${B}RSA PRIVATE KEY-----\n${body}${E}RSA PRIVATE KEY-----\n`,
  'deploy/gcp.json': JSON.stringify({
    type: 'service' + '_account', project_id: 'demo-project', private_key_id: '0123456789abcdef0123456789abcdef01234567',
    private_key: `${B}PRIVATE KEY-----\\n${body.replace(/\n/g, '\\n')}${E}PRIVATE KEY-----\\n`, client_email: 'svc@demo-project.iam.gserviceaccount.com',
  }, null, 2),
  'home/.bashrc': `alias ll='ls -l'\nexport PATH="$HOME/bin:$PATH"\nexport GITHUB_TOKEN=${'ghp' + '_'}${'aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z'}AB\n`,
  'aws.config': `[default]\nregion = eu-west-1\naws_access_key_id = ${'AKIA' + 'IOSFODNN7EXAMPLE'}\naws_secret_access_key = ${'wJalrXUtnFEMI/K7MDENG/bPxRfiCY' + 'EXAMPLEKEY'}\n`,
  'docker/config.json': JSON.stringify({ auths: { 'registry.example.com': { auth: Buffer.from('deploy:' + 's3cr3t-pa55word').toString('base64') } } }, null, 2),
  'notes/slack.md': `Alerts go to ${'xox' + 'b-'}123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx\n`,
};

/** Ordinary code that talks about keys and tokens without holding one: never flagged. */
export const LOOKALIKES: Record<string, string> = {
  'src/keys.ts': `// Reads the private key path from settings; the PEM itself never lives here.\nexport const API_KEY = process.env.API_KEY ?? '';\nexport function token(): string { return getToken('github'); }\nconst header = '-----BEGIN CERTIFICATE-----';\n`,
  'scripts/env.sh': 'export API_TOKEN="$SECRET_FROM_VAULT"\nexport PASSWORD=${DB_PASSWORD}\nexport AUTH=short\n',
  'docs/aws.md': 'Set aws_access_key_id in ~/.aws/credentials (see the AWS docs). Keys look like AKIA…\n',
};
