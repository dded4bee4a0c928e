// Writes the small repository the e2e test opens: a few files in different languages, with
// known content so sources (file:line ranges) point at real code.
import fs from 'node:fs';
import path from 'node:path';

const dir = path.resolve(process.argv[2] ?? 'e2e-repo');
const files = {
  'README.md': `# Tiny Calc

A tiny calculator used by the M+ end-to-end test. \`src/calc.ts\` holds the arithmetic,
\`src/parser.ts\` reads expressions, and \`tools/report.py\` prints a usage report.
`,
  'src/calc.ts': `/** Arithmetic for Tiny Calc. */
export function add(a: number, b: number): number {
  return a + b;
}

export function multiply(a: number, b: number): number {
  return a * b;
}

export function divide(a: number, b: number): number {
  if (b === 0) throw new Error('division by zero');
  return a / b;
}
`,
  'src/parser.ts': `import { add, multiply } from './calc';

/** Evaluates "a + b" or "a * b". */
export function evaluate(expr: string): number {
  const m = /^\\s*(\\d+)\\s*([+*])\\s*(\\d+)\\s*$/.exec(expr);
  if (!m) throw new Error(\`cannot parse \${expr}\`);
  const a = Number(m[1]);
  const b = Number(m[3]);
  return m[2] === '+' ? add(a, b) : multiply(a, b);
}
`,
  '.mplusignore': `# never fed into memory
*.log
build/
`,
  'src/config.json': `{ "precision": 4, "locale": "en" }
`,
  'tools/report.py': `"""Prints how often each operator was used."""
import collections


def report(lines):
    counts = collections.Counter(ch for line in lines for ch in line if ch in "+*")
    for op, n in sorted(counts.items()):
        print(f"{op}: {n}")


if __name__ == "__main__":
    report(["1 + 2", "3 * 4", "5 + 6"])
`,
};
for (const [rel, text] of Object.entries(files)) {
  const f = path.join(dir, rel);
  fs.mkdirSync(path.dirname(f), { recursive: true });
  fs.writeFileSync(f, text);
}
console.log(`fixture repository: ${dir} (${Object.keys(files).length} files)`);
