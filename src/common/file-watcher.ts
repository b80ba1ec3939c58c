/**
 * Notices when credential files change (a renewed certificate, a Kubernetes Secret update, which
 * swaps a symlink) and calls back once per change. fs.watch on the folders makes it quick;
 * polling makes it sure, since fs.watch misses events on some filesystems.
 */
import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Clock, Timer } from './clock.ts';

export interface FileWatcherOptions {
  /** The files, or a function that lists them now (a folder whose set of files changes). */
  files: readonly string[] | (() => Promise<readonly string[]>);
  /** Folders to watch besides those of `files` (needed when `files` is a function). */
  dirs?: readonly string[];
  pollMs: number;
  clock: Clock;
  onChange: () => void;
}

export class FileWatcher {
  private readonly opts: FileWatcherOptions;
  private digest = '';
  private timer: Timer | undefined;
  private watchers: FSWatcher[] = [];
  private debounce: Timer | undefined;
  private stopped = false;

  constructor(opts: FileWatcherOptions) {
    this.opts = opts;
  }

  async start(): Promise<void> {
    this.digest = await this.currentDigest();
    const fixed = typeof this.opts.files === 'function' ? [] : this.opts.files;
    for (const dir of new Set([...fixed.map((f) => dirname(f)), ...(this.opts.dirs ?? [])])) {
      try {
        const w = watch(dir, { persistent: false }, () => this.soon());
        w.on('error', () => {});
        this.watchers.push(w);
      } catch {
        // Polling still covers this folder.
      }
    }
    this.schedulePoll();
  }

  close(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.debounce?.cancel();
    for (const w of this.watchers) w.close();
    this.watchers = [];
  }

  private soon(): void {
    if (this.stopped) return;
    this.debounce?.cancel();
    // Writers replace files one by one; wait for the set to settle.
    this.debounce = this.opts.clock.setTimeout(() => void this.check(), 200);
  }

  private schedulePoll(): void {
    if (this.stopped) return;
    this.timer = this.opts.clock.setTimeout(() => {
      void this.check().finally(() => this.schedulePoll());
    }, this.opts.pollMs);
  }

  private async check(): Promise<void> {
    const digest = await this.currentDigest();
    if (this.stopped || digest === this.digest || digest === '') return;
    this.digest = digest;
    this.opts.onChange();
  }

  /** Hash of all files' names and contents; '' while any is missing (mid-update). */
  private async currentDigest(): Promise<string> {
    const hash = createHash('sha256');
    try {
      const files = typeof this.opts.files === 'function' ? await this.opts.files() : this.opts.files;
      for (const f of files)
        hash
          .update(f)
          .update('\0')
          .update(await readFile(f))
          .update('\0');
    } catch {
      return '';
    }
    return hash.digest('hex');
  }
}
