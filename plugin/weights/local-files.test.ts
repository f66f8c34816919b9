import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isBuildError } from '../errors';
import { hashFiles, walkFolder } from './local-files';
import { sha256Of } from '../../providers/storage/hash';

describe('local weights files', () => {
  let dir: string;
  let cacheFile: string;
  const old = new Date(Date.now() - 3600_000);

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sgpu-local-'));
    fs.mkdirSync(path.join(dir, 'src', 'b'), { recursive: true });
    for (const [rel, text] of [['src/z.txt', 'z'], ['src/b/a.txt', 'a'], ['src/B.txt', 'B']]) {
      fs.writeFileSync(path.join(dir, rel), text);
      fs.utimesSync(path.join(dir, rel), old, old);
    }
    cacheFile = path.join(dir, 'cache.json');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('walks every file in path order, following a symlinked folder once', async () => {
    fs.symlinkSync(path.join(dir, 'src', 'b'), path.join(dir, 'src', 'link'));
    const files = walkFolder(path.join(dir, 'src'));
    assert.deepEqual(files.map((f) => f.path), ['B.txt', 'b/a.txt', 'z.txt']);
    assert.throws(() => walkFolder(path.join(dir, 'nope')), (e: unknown) => isBuildError(e) && /is not a folder/.test(e.message));
  });

  it('reads each file once; the cache answers while size, mtime and ctime stay the same', async () => {
    const source = path.join(dir, 'src');
    const first = await hashFiles(source, walkFolder(source), { cacheFile });
    assert.equal(first.hashedFiles, 3);
    assert.equal(first.files.find((f) => f.path === 'z.txt')?.sha256, sha256Of('z'));
    const second = await hashFiles(source, walkFolder(source), { cacheFile });
    assert.equal(second.hashedFiles, 0);
    assert.deepEqual(second.files.map((f) => f.sha256), first.files.map((f) => f.sha256));

    fs.writeFileSync(path.join(source, 'z.txt'), 'y');
    fs.utimesSync(path.join(source, 'z.txt'), old, old);
    const third = await hashFiles(source, walkFolder(source), { cacheFile });
    assert.equal(third.hashedFiles, 1, 'same size and mtime, but ctime moved');
    assert.equal(third.files.find((f) => f.path === 'z.txt')?.sha256, sha256Of('y'));
  });

  it('does not cache a file modified just before it was hashed (a write in the same tick would go unseen)', async () => {
    const source = path.join(dir, 'src');
    fs.writeFileSync(path.join(source, 'fresh.txt'), 'new');
    await hashFiles(source, walkFolder(source), { cacheFile });
    const again = await hashFiles(source, walkFolder(source), { cacheFile });
    assert.equal(again.hashedFiles, 1);
  });

  it('ignores a cache written for another folder', async () => {
    const source = path.join(dir, 'src');
    await hashFiles(source, walkFolder(source), { cacheFile });
    fs.cpSync(source, path.join(dir, 'copy'), { recursive: true, preserveTimestamps: true });
    const copy = path.join(dir, 'copy');
    assert.equal((await hashFiles(copy, walkFolder(copy), { cacheFile })).hashedFiles, 3);
  });
});
