import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { validateOptions } from '../lib/validate.js';
import { BACKENDS } from './helpers.js';
import { type Block, readmeBlocks } from './readme-blocks.js';

/*
 * Every js and ts example in README.md, read from the file, runs on each backend in a fresh
 * process, with the package imported by name as a user would (`require('slabpool')`). Its
 * claims are checked where it states them:
 *   expression;   // => VALUE      the expression deep-equals VALUE (a JS expression, evaluated
 *                                  after it, in the same scope); a note may follow after two
 *                                  spaces and a parenthesis: `// => 0    (a percent)`
 *   statement;    // throws CODE   the statement throws an error whose code is CODE
 * A run fails on the first wrong claim, naming its README line. The TypeScript examples are
 * type-checked under --strict against dist/'s declarations, without @types/node unless marked
 * `<!-- example: needs @types/node -->`; and the README's note on which entry points need
 * @types/node is checked as stated.
 */

const root = path.resolve(__dirname, '..');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const blocks = readmeBlocks();
const NEEDS_NODE_TYPES = 'example: needs @types/node';
const runnable = blocks.filter((b) => (b.lang === 'js' || b.lang === 'ts') && (b.marker === null || b.marker === NEEDS_NODE_TYPES));

// A project dir per type setup: node_modules holds slabpool (this package, by symlink) and
// prom-client; `typed` adds @types/node.
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'slabpool-readme-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
function project(name: string, nodeTypes: boolean): string {
  const dir = path.join(work, name);
  fs.mkdirSync(path.join(dir, 'node_modules', '@types'), { recursive: true });
  fs.symlinkSync(root, path.join(dir, 'node_modules', 'slabpool'), 'dir');
  fs.symlinkSync(path.join(root, 'node_modules', 'prom-client'), path.join(dir, 'node_modules', 'prom-client'), 'dir');
  if (nodeTypes) fs.symlinkSync(path.join(root, 'node_modules', '@types', 'node'), path.join(dir, 'node_modules', '@types', 'node'), 'dir');
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, private: true }));
  return dir;
}
const bare = project('bare', false);
const typed = project('typed', true);

const PRELUDE = `
const __util = require('node:util');
let __checks = 0;
const __fail = (line, text) => { console.error('README.md:' + line + ': ' + text); process.exit(1); };
globalThis.__eq = (actual, expected, line) => {
  const a = actual(), e = expected();
  __checks++;
  if (!__util.isDeepStrictEqual(a, e)) __fail(line, 'gives ' + __util.inspect(a) + ', the README says ' + __util.inspect(e));
};
globalThis.__throws = (fn, code, line) => {
  __checks++;
  try { fn(); } catch (e) {
    if (e && e.code === code) return;
    __fail(line, 'throws ' + (e && e.code) + ' (' + (e && e.message) + '), the README says ' + code);
  }
  __fail(line, 'does not throw, the README says ' + code);
};
process.on('exit', (status) => { if (status === 0) console.log('checks: ' + __checks); });
`;

/** The block with its `// =>` and `// throws` claims turned into checks, and how many there are. */
export function instrument(block: Block): { source: string; checks: number } {
  let checks = 0;
  const lines = block.code.split('\n').map((text, i) => {
    const line = block.line + i;
    const value = /^(\s*)(.*?);\s*\/\/ => (.*?)(?:\s{2,}\(.*)?$/.exec(text);
    if (value) {
      checks++;
      return `${value[1]}__eq(() => (${value[2]}), () => (${value[3]}), ${line});`;
    }
    const thrown = /^(\s*)(.*?);\s*\/\/ throws (ERR_[A-Z_]+)/.exec(text);
    if (thrown) {
      checks++;
      return `${thrown[1]}__throws(() => { ${thrown[2]}; }, '${thrown[3]}', ${line});`;
    }
    return text;
  });
  const js = ts.transpileModule(lines.join('\n'), {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, esModuleInterop: true },
    fileName: `readme-${block.line}.ts`,
  }).outputText;
  // Top-level await in an example: the whole block runs in one async function.
  return { source: `${PRELUDE}\n(async () => {\n${js}\n})().catch((e) => { console.error(e); process.exit(1); });\n`, checks };
}

function runBlock(block: Block, backend: string, source = instrument(block).source): { status: number | null; stdout: string; stderr: string } {
  const file = path.join(typed, `readme-${block.line}-${backend}.cjs`);
  fs.writeFileSync(file, source);
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SLABPOOL_')));
  const r = spawnSync(process.execPath, [file], { cwd: typed, env: { ...env, SLABPOOL_BACKEND: backend }, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('README.md code blocks', () => {
  it('are all either examples that run, or marked with why not', () => {
    expect(runnable.length).toBeGreaterThanOrEqual(5);
    for (const b of blocks) {
      if (runnable.includes(b)) continue;
      const why = `README.md:${b.line}: a \`\`\`${b.lang} block needs <!-- example: not run: REASON --> or <!-- package-manager: NAME FILE --> on the line before it`;
      expect(b.marker ?? '', why).toMatch(/^(example: not run: \S.*|package-manager: \S+ \S+)$/);
    }
  });

  it('give every package manager its install commands and its override, each tested by test/package-managers.test.ts', () => {
    const snippets = blocks.filter((b) => b.marker?.startsWith('package-manager: ')).map((b) => [b.marker, b.section]);
    expect(snippets).toEqual([
      ['package-manager: tarball commands', 'Install'],
      ['package-manager: pnpm-builds pnpm-workspace.yaml', 'Install'],
      ['package-manager: npm package.json', 'Replacing typedarray-pool'],
      ['package-manager: yarn package.json', 'Replacing typedarray-pool'],
      ['package-manager: pnpm9 package.json', 'Replacing typedarray-pool'],
      ['package-manager: pnpm pnpm-workspace.yaml', 'Replacing typedarray-pool'],
    ]);
  });
});

describe.each(BACKENDS)('README.md examples on the %s backend', (backend) => {
  it.each(runnable.map((b) => [`line ${b.line} (${b.section})`, b] as const))('%s runs and every claim in it holds', (_name, block) => {
    const { checks } = instrument(block);
    const r = runBlock(block, backend);
    expect(r.stderr + r.stdout, `README.md:${block.line}`).toContain(`checks: ${checks}`);
    expect(r.status, r.stderr).toBe(0);
  });
});

describe('the README-examples harness', () => {
  it('fails an example edited into something false, naming the line', () => {
    const block = runnable.find((b) => /\/\/ => \d/.test(b.code))!;
    const lines = block.code.split('\n');
    const at = lines.findIndex((l) => /\/\/ => \d/.test(l));
    lines[at] = lines[at]!.replace(/\/\/ => (\d+)/, (_m, n: string) => `// => ${Number(n) + 1}`);
    const edited = { ...block, code: lines.join('\n') };
    const r = runBlock(edited, 'js');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^README\\.md:${block.line + at}: gives \\d+, the README says \\d+`, 'm'));
    const thrower = runnable.find((b) => /\/\/ throws ERR_/.test(b.code))!;
    const wrongCode = { ...thrower, code: thrower.code.replace(/\/\/ throws ERR_SLABPOOL_DOUBLE_RETURN/, '// throws ERR_SLABPOOL_FOREIGN_BLOCK') };
    const r2 = runBlock(wrongCode, 'js');
    expect(r2.status).toBe(1);
    expect(r2.stderr).toMatch(/throws ERR_SLABPOOL_DOUBLE_RETURN \(.*\), the README says ERR_SLABPOOL_FOREIGN_BLOCK/);
  });
});

/** tsc --strict over `files` in `dir`, with or without @types/node; its diagnostics ('' when none). */
function typeCheck(dir: string, files: Record<string, string>, nodeTypes: boolean): string {
  const sub = fs.mkdtempSync(path.join(dir, 'tc-'));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(sub, name), text);
  const tsconfig = {
    compilerOptions: { strict: true, noEmit: true, module: 'node16', moduleResolution: 'node16', target: 'es2022', lib: ['es2022', 'esnext.disposable'], types: nodeTypes ? ['node'] : [], skipLibCheck: false },
    files: Object.keys(files),
  };
  fs.writeFileSync(path.join(sub, 'tsconfig.json'), JSON.stringify(tsconfig));
  const r = spawnSync(process.execPath, [tsc, '-p', sub], { cwd: sub, encoding: 'utf8' });
  return (r.stdout + r.stderr).trim();
}

describe('README.md TypeScript', () => {
  const tsBlocks = runnable.filter((b) => b.lang === 'ts');
  it('has TypeScript examples', () => expect(tsBlocks.length).toBeGreaterThanOrEqual(1));
  it('type-checks every TypeScript example under --strict, without @types/node unless marked', () => {
    const files = (need: boolean): Record<string, string> =>
      Object.fromEntries(tsBlocks.filter((b) => (b.marker === NEEDS_NODE_TYPES) === need).map((b) => [`readme-${b.line}.ts`, `${b.code}\nexport {};\n`]));
    expect(typeCheck(bare, files(false), false)).toBe('');
    const withNode = files(true);
    if (Object.keys(withNode).length > 0) expect(typeCheck(typed, withNode, true)).toBe('');
  });
  it('needs no @types/node for slabpool, and @types/node for slabpool/compat and slabpool/prometheus, as the note says', () => {
    const use = (entry: string): Record<string, string> => ({ 'a.ts': `import * as m from '${entry}';\nexport const x: object = m;\n` });
    expect(typeCheck(bare, use('slabpool'), false)).toBe('');
    for (const entry of ['slabpool/compat', 'slabpool/prometheus']) {
      expect(typeCheck(bare, use(entry), false)).toMatch(/error TS2307: Cannot find module 'node:buffer'/);
      expect(typeCheck(typed, use(entry), true)).toBe('');
    }
  });
});

/** The rows of the table under `### heading` in README.md: cells, backticks kept. */
function tableRows(heading: string): string[][] {
  const text = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const start = text.indexOf(`\n${heading}\n`);
  expect(start, `README.md has no "${heading}"`).toBeGreaterThan(0);
  const body = text.slice(start + heading.length + 2, text.indexOf('\n#', start + heading.length + 2));
  const rows = body.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('|---'));
  return rows.slice(1).map((l) => l.slice(2, -2).split(' | '));
}

describe("README.md's options table", () => {
  const rows = new Map(tableRows('### Options').map((cells) => [/^`(\w+)`$/.exec(cells[0]!)?.[1] ?? cells[0]!, cells]));
  const base = { blockSize: 4, numBlocks: 8 };
  const rejects = (options: object): boolean => {
    try {
      validateOptions(options);
      return false;
    } catch (err) {
      expect((err as { code?: string }).code).toBe('ERR_SLABPOOL_INVALID_ARG');
      return true;
    }
  };

  it('lists exactly the options the pool accepts', () => {
    const message = (() => {
      try {
        validateOptions({ ...base, nosuch: 1 });
      } catch (err) {
        return (err as Error).message;
      }
      return '';
    })();
    const known = /known: ([^)]*)\)/.exec(message)![1]!.split(', ');
    expect([...rows.keys()].sort()).toEqual(known.sort());
  });

  it('states the defaults validateOptions fills in', () => {
    const cfg = validateOptions(base);
    const literal = (name: string): string => rows.get(name)![2]!;
    expect(literal('type')).toBe(`\`${cfg.type.name}\``);
    expect(literal('alignment')).toBe(`\`${cfg.alignment}\``);
    expect(literal('grow')).toBe(`\`${cfg.grow}\``);
    expect(literal('autoCoalesceThreshold')).toBe(`\`${cfg.autoCoalesceThreshold}\``);
    expect(literal('poison')).toBe(`\`'${cfg.poison}'\``);
    expect(literal('backend')).toBe(`\`'${cfg.backend}'\``);
    expect(literal('alignmentScope')).toBe(`\`'${cfg.alignmentScope}'\``);
    expect(literal('detach')).toMatch(new RegExp(`^\`${cfg.detach}\`, or \`true\` when \`SLABPOOL_DETACH\` is on$`));
    expect(literal('maxBlocks')).toBe('`numBlocks` without `grow`, 2^30 with it');
    expect(cfg.maxBlocks).toBe(base.numBlocks);
    expect(validateOptions({ ...base, grow: true }).maxBlocks).toBe(2 ** 30);
    for (const name of ['blockSize', 'numBlocks']) {
      expect(literal(name)).toBe('required');
      const { [name as 'blockSize']: _dropped, ...rest } = base;
      expect(rejects(rest)).toBe(true);
    }
  });

  it('states the ranges validateOptions enforces', () => {
    expect(rows.get('alignment')![1]).toBe('power of two from 8 to 4096 (bytes)');
    expect([4, 8, 24, 4096, 8192].map((alignment) => rejects({ ...base, alignment }))).toEqual([true, false, true, false, true]);
    expect(rows.get('autoCoalesceThreshold')![1]).toMatch(/^number from 0 to 100 /);
    expect([-1, 0, 100, 101].map((autoCoalesceThreshold) => rejects({ ...base, autoCoalesceThreshold }))).toEqual([true, false, false, true]);
    expect(rows.get('numBlocks')![1]).toMatch(/^integer from 1 to 2\^30/);
    expect([0, 1, 2 ** 30 + 1].map((numBlocks) => rejects({ blockSize: 1, numBlocks }))).toEqual([true, false, true]);
    expect(rows.get('maxBlocks')![1]).toBe('integer from `numBlocks` to 2^30; without `grow`, only `numBlocks` itself');
    expect([[false, 8], [false, 9], [true, 7], [true, 2 ** 30], [true, 2 ** 30 + 1]].map(([grow, maxBlocks]) => rejects({ ...base, grow, maxBlocks }))).toEqual([false, true, true, false, true]);
    expect(rows.get('poison')![1]).toBe("`'none'` or `'nan'`; `'nan'` only with `Float64Array` or `Float32Array`");
    expect([Float64Array, Float32Array, Int32Array].map((type) => rejects({ ...base, type, poison: 'nan' }))).toEqual([false, false, true]);
    expect(rows.get('alignmentScope')![1]).toBe("`'buffer'` or `'address'`; `'address'` not with `backend: 'js'`");
    expect(rejects({ ...base, backend: 'js', alignmentScope: 'address' })).toBe(true);
  });
});
