/**
 * A small real repository for sidecar and CLI tests: TypeScript, Python, Go and Rust sources, a
 * README, a secret that must never be fed (.env), an ignored build folder and a binary file.
 * `bulk` adds that many more generated modules (for long ingestions to cancel or kill).
 */
import * as fs from 'fs';
import * as path from 'path';

export const SECRET = 'sk-live-THIS-MUST-NEVER-REACH-THE-MODEL-42';

const FILES: Record<string, string> = {
  'README.md': '# Inventory service\n\nTracks stock levels per warehouse and reorders when low.\n',
  'src/stock.ts': `export interface Item {\n  sku: string;\n  quantity: number;\n}\n\n/** Units below which an item is reordered. */\nexport const REORDER_LEVEL = 12;\n\nexport class Warehouse {\n  private items = new Map<string, Item>();\n\n  add(sku: string, quantity: number): void {\n    const cur = this.items.get(sku);\n    this.items.set(sku, { sku, quantity: (cur?.quantity ?? 0) + quantity });\n  }\n\n  needsReorder(): Item[] {\n    return [...this.items.values()].filter((i) => i.quantity < REORDER_LEVEL);\n  }\n}\n`,
  'src/report.py': `from dataclasses import dataclass\n\n\n@dataclass\nclass Report:\n    warehouse: str\n    low_items: list\n\n    def render(self) -> str:\n        lines = [f"warehouse {self.warehouse}"]\n        for item in self.low_items:\n            lines.append(f"  reorder {item}")\n        return "\\n".join(lines)\n\n\ndef summarize(reports):\n    return sum(len(r.low_items) for r in reports)\n`,
  'cmd/main.go': `package main\n\nimport "fmt"\n\n// Restock orders units for one SKU.\nfunc Restock(sku string, units int) string {\n\treturn fmt.Sprintf("order %d of %s", units, sku)\n}\n\nfunc main() {\n\tfmt.Println(Restock("A-1", 40))\n}\n`,
  'lib/src/lib.rs': `/// Shipping cost in cents for a parcel weight in grams.\npub fn shipping_cost(grams: u32) -> u32 {\n    if grams < 500 { 450 } else { 450 + (grams - 500) / 100 * 35 }\n}\n\npub struct Parcel {\n    pub grams: u32,\n}\n\nimpl Parcel {\n    pub fn cost(&self) -> u32 {\n        shipping_cost(self.grams)\n    }\n}\n`,
  '.env': `API_KEY=${SECRET}\n`,
  '.gitignore': 'build/\n',
  'build/out.js': 'console.log("generated");\n',
};

export function writeFixtureRepo(dir: string, bulk = 0): void {
  for (const [rel, text] of Object.entries(FILES)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  }
  fs.writeFileSync(path.join(dir, 'logo.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0, 1, 2, 3, 0, 0, 9]));
  for (let i = 0; i < bulk; i++) {
    const body = Array.from({ length: 14 }, (_, j) => `export function step${i}_${j}(x: number): number {\n  // stage ${j} of pipeline ${i}\n  return x * ${j + 2} + ${i};\n}\n`).join('\n');
    fs.mkdirSync(path.join(dir, 'src', 'gen'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'src', 'gen', `pipeline${i}.ts`), body);
  }
}
