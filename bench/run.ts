/**
 * `npm run bench` — skypush side by side with its peers (bare ws, ws corked per turn, Socket.IO 4), all
 * measured in this run on this machine. Prints the machine, a table of medians [min–max] over the
 * repetitions with skypush's ratios to each peer, and the issue's targets.
 *
 *   npm run bench                     full run: n = 2k, 10k, 19k; 3 repetitions; multi-node 100k (6 processes); writes
 *                                     bench/results/latest.json and the results block of docs/BENCHMARKS.md
 *   npm run bench -- --quick          reduced set, under 2 minutes
 *   npm run bench -- --json           also write bench/results/latest.json (any run)
 *   npm run bench -- --scenarios wide-send,toall-full,backlog-storm,pg-contention
 *                                     issue #13's storage scenarios only (skypush against itself; sizes from
 *                                     the preset: full by default, reduced with --quick, tiny with --smoke)
 *   options: --n 2000,10000  --reps 3  --systems skypush,ws  --scenarios broadcast,idle
 *            --out FILE  --md FILE  --dist (run dist/src/main.js)  --cpu-prof (profile each scenario's window inside the
 *            server: bench/results/profiles/*.cpuprofile; read them with bench/profile.ts)
 *            --smoke (50 connections, 1 repetition: what test/bench-smoke.test.ts runs)
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as prettier from 'prettier';
import { machine } from './lib/machine.ts';
import {
  aggregate,
  checkTargets,
  renderMarkdown,
  renderTargets,
  renderText,
  tableRows,
  type Results,
} from './lib/report.ts';
import { ROOT } from './lib/rpc.ts';
import { performanceTargets } from './lib/perf-targets.ts';
import { runCell } from './scenarios/cell.ts';
import { startDriver } from './scenarios/context.ts';
import { runBacklogStorm } from './scenarios/backlog-storm.ts';
import { multinodeBlocker, runMultinode } from './scenarios/multinode.ts';
import { runPgContention } from './scenarios/pg-contention.ts';
import {
  PRESETS,
  SCENARIOS,
  isCellScenario,
  scenariosFor,
  type Plan,
  type Sample,
  type ScenarioName,
} from './scenarios/plan.ts';
import { runStorageScenarios } from './scenarios/storage.ts';
import { runToallFull } from './scenarios/toall-full.ts';
import { runWideSend } from './scenarios/wide-send.ts';
import type { SystemName } from './systems/system.ts';

const SYSTEMS: SystemName[] = ['skypush', 'ws', 'ws-cork', 'socketio'];

function list<T extends string>(
  raw: string | undefined,
  allowed: readonly T[],
  name: string,
): T[] | undefined {
  if (raw === undefined) return undefined;
  const xs = raw.split(',').map((s) => s.trim()) as T[];
  for (const x of xs)
    if (!allowed.includes(x)) throw new Error(`--${name}: unknown "${x}" (use ${allowed.join(', ')})`);
  return xs;
}

interface Args {
  plan: Plan;
  json: boolean;
  out: string;
  md?: string;
  /** A complete default run: its results replace the results block of docs/BENCHMARKS.md. */
  docs: boolean;
}

const DOCS = join(ROOT, 'docs/BENCHMARKS.md');
const BEGIN = '<!-- bench:results:begin (written by npm run bench) -->';
const END = '<!-- bench:results:end -->';

function planFromArgs(argv: string[]): Args {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      smoke: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      out: { type: 'string' },
      md: { type: 'string' },
      n: { type: 'string' },
      reps: { type: 'string' },
      systems: { type: 'string' },
      scenarios: { type: 'string' },
      dist: { type: 'boolean', default: false },
      'cpu-prof': { type: 'boolean', default: false },
    },
  });
  const base = PRESETS[values.smoke ? 'smoke' : values.quick ? 'quick' : 'full'];
  const plan: Plan = { ...base };
  if (values.n) plan.ns = values.n.split(',').map((x) => Number(x));
  if (plan.ns.some((x) => !Number.isInteger(x) || x < 2 || x > 19_500))
    throw new Error('--n: sizes from 2 to 19500 (one server process holds at most ~19,900 sockets)');
  if (values.reps) plan.reps = Math.max(1, Number(values.reps));
  plan.systems = list(values.systems, SYSTEMS, 'systems') ?? plan.systems;
  plan.scenarios = list<ScenarioName>(values.scenarios, SCENARIOS, 'scenarios') ?? plan.scenarios;
  if (values.dist) plan.entry = 'dist';
  if (values['cpu-prof']) {
    plan.profileDir = join(ROOT, 'bench/results/profiles');
    mkdirSync(plan.profileDir, { recursive: true });
  }
  const out = resolve(values.out ?? join(ROOT, 'bench/results/latest.json'));
  const complete =
    !values.quick &&
    !values.smoke &&
    values.n === undefined &&
    values.reps === undefined &&
    values.systems === undefined &&
    values.scenarios === undefined;
  return {
    plan,
    json: complete || values.json || values.out !== undefined,
    out,
    ...(values.md && { md: resolve(values.md) }),
    docs: complete,
  };
}

async function main(): Promise<void> {
  const { plan, json, out, md, docs } = planFromArgs(process.argv.slice(2));
  const m = machine();
  const started = Date.now();
  console.log(
    `skypush bench — ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}, fd limit ${m.fdLimit}`,
  );
  const sizes = plan.scenarios.some(isCellScenario) ? `n = ${plan.ns.join(', ')}; ` : '';
  console.log(
    `${sizes}${plan.reps} repetition(s); systems: ${plan.systems.join(', ')}; ${plan.scenarios.join(', ')}`,
  );
  if (m.loadAverage > 0.5)
    console.log(
      `note: load average ${m.loadAverage} at start; other work on this machine skews wall-clock figures`,
    );
  console.log('');

  const samples: Sample[] = [];
  const skipped: Results['skipped'] = [];
  const notes: Results['notes'] = [];
  const driver = startDriver();
  try {
    for (let rep = 1; rep <= plan.reps; rep++) {
      for (const n of plan.ns) {
        for (const system of plan.systems) {
          if (scenariosFor(system, plan).filter(isCellScenario).length === 0) continue;
          process.stderr.write(`[rep ${rep}/${plan.reps}] ${system} n=${n}\n`);
          try {
            samples.push(...(await runCell({ plan, system, n, driver })));
          } catch (e) {
            process.stderr.write(`  FAILED: ${(e as Error).stack ?? String(e)}\n`);
          }
        }
      }
    }
    if (plan.scenarios.includes('multinode') && plan.systems.includes('skypush')) {
      const blocker = await multinodeBlocker();
      if (blocker) skipped.push({ scenario: 'multinode', reason: `not run: ${blocker}` });
      else {
        process.stderr.write(
          `[multinode] ${plan.multinode.nodes} skypush nodes, ${plan.multinode.connections} connections\n`,
        );
        try {
          samples.push(...(await runMultinode(plan, driver)));
        } catch (e) {
          skipped.push({ scenario: 'multinode', reason: `failed: ${(e as Error).message}` });
          process.stderr.write(`  FAILED: ${(e as Error).stack ?? String(e)}\n`);
        }
      }
    }
    if (plan.systems.includes('skypush')) {
      const storage = await runStorageScenarios(plan, driver, {
        'wide-send': runWideSend,
        'toall-full': runToallFull,
        'backlog-storm': runBacklogStorm,
        'pg-contention': runPgContention,
      });
      samples.push(...storage.samples);
      skipped.push(...storage.skipped);
      notes.push(...storage.notes);
    }
  } finally {
    await driver.stop();
  }

  const runs = aggregate(samples);
  const targets = [...checkTargets(runs), ...performanceTargets(runs)];
  const rows = tableRows(runs);
  console.log(renderText(rows));
  for (const s of [...skipped, ...notes]) console.log(`\n${s.scenario}: ${s.reason}`);
  console.log(`\nTargets (issues #7, #13 and #14; ratios from this run):\n${renderTargets(targets)}`);
  console.log(`\n${((Date.now() - started) / 1000).toFixed(0)} s`);

  const results: Results = { machine: m, runs, skipped, notes, targets };
  if (json) {
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
    console.log(`wrote ${out}`);
  }
  if (md) {
    writeFileSync(md, `${renderMarkdown(rows)}\n\n${renderTargets(targets)}\n`);
    console.log(`wrote ${md}`);
  }
  if (docs) {
    await writeResultsBlock(results, rows, new Date(started));
    console.log(`updated the results in ${DOCS}`);
  }
}

/** Replaces what lies between the markers in docs/BENCHMARKS.md with this run's machine, table and targets. */
async function writeResultsBlock(results: Results, rows: string[][], date: Date): Promise<void> {
  const text = readFileSync(DOCS, 'utf8');
  const from = text.indexOf(BEGIN);
  const to = text.indexOf(END);
  if (from < 0 || to < from) throw new Error(`${DOCS}: results markers not found`);
  const m = results.machine;
  const skipped = [...results.skipped, ...results.notes].map((s) => `\n${s.scenario}: ${s.reason}`).join('');
  const block = [
    BEGIN,
    '',
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}, fd limit ${m.fdLimit}; ` +
      `load average ${m.loadAverage} at the start; ${date.toISOString().slice(0, 10)}.`,
    '',
    renderMarkdown(rows),
    skipped,
    '### Targets (from issues #7 and #13)',
    '',
    '```',
    renderTargets(results.targets),
    '```',
    '',
  ].join('\n');
  // Formatted as `npm run lint` expects (prettier aligns the table's columns).
  const options = { ...(await prettier.resolveConfig(DOCS)), filepath: DOCS };
  writeFileSync(DOCS, await prettier.format(text.slice(0, from) + block + text.slice(to), options));
}

main().catch((e: unknown) => {
  console.error((e as Error).stack ?? String(e));
  process.exit(1);
});
