import * as fs from 'node:fs';
import * as path from 'node:path';

/*
 * The fenced code blocks of README.md, with the marker comment on the line before each:
 *   <!-- example: not run: REASON -->       a block no test runs as it stands (shell, output, a fragment)
 *   <!-- example: needs @types/node -->     a TypeScript example type-checked with @types/node
 *   <!-- package-manager: NAME FILE -->     a package manager's snippet, for FILE (package.json, pnpm-workspace.yaml)
 * A js or ts block without "not run" is an example test/readme.test.ts runs; any other block must
 * carry a marker, so that nothing in the README is left untested without saying why.
 */

export interface Block {
  /** The info string: js, ts, json, yaml, sh, or '' for a bare fence. */
  readonly lang: string;
  readonly code: string;
  /** 1-based line of the block's first code line in README.md. */
  readonly line: number;
  /** The marker comment before the fence, without `<!--` and `-->`, or null. */
  readonly marker: string | null;
  /** The `## ` heading the block is under. */
  readonly section: string;
}

export const README = path.resolve(__dirname, '..', 'README.md');

export function readmeBlocks(text = fs.readFileSync(README, 'utf8')): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  let section = '';
  for (let i = 0; i < lines.length; i++) {
    const heading = /^## (.*)/.exec(lines[i]!);
    if (heading) section = heading[1]!;
    const fence = /^```(\S*)\s*$/.exec(lines[i]!);
    if (!fence) continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && lines[end] !== '```') end++;
    if (end === lines.length) throw new Error(`README.md:${i + 1}: unclosed code fence`);
    const marker = /^<!--\s*(.*?)\s*-->$/.exec(lines[i - 1] ?? '')?.[1] ?? null;
    blocks.push({ lang: fence[1]!, code: lines.slice(start, end).join('\n'), line: start + 1, marker, section });
    i = end;
  }
  return blocks;
}

/** The snippet README.md gives package manager `name` for `file`. */
export function packageManagerSnippet(name: string, file: string): string {
  const found = readmeBlocks().filter((b) => b.marker === `package-manager: ${name} ${file}`);
  if (found.length !== 1) throw new Error(`README.md has ${found.length} blocks marked "package-manager: ${name} ${file}", not 1`);
  return found[0]!.code;
}
