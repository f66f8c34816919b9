import assert from 'node:assert/strict';
import { isSafeRelativePath, parseManifest, parsePointer, versionOf, weightsKeys } from './weights-layout';

const sha = (c: string): string => c.repeat(64);

describe('weights layout', () => {
  it('names a version by its files, in any order; any path, content or size change is a new version', () => {
    const files = [
      { path: 'b.bin', sha256: sha('b'), size: 2 },
      { path: 'a.bin', sha256: sha('a'), size: 1 },
    ];
    const v = versionOf(files);
    assert.match(v, /^[0-9a-f]{16}$/);
    assert.equal(versionOf([...files].reverse()), v);
    assert.notEqual(versionOf([{ ...files[0], path: 'c.bin' }, files[1]]), v);
    assert.notEqual(versionOf([{ ...files[0], sha256: sha('c') }, files[1]]), v);
    assert.notEqual(versionOf([{ ...files[0], size: 3 }, files[1]]), v);
  });

  it('keeps every key of a prefix under it, trailing slashes or not', () => {
    const keys = weightsKeys('classifier/v3/');
    assert.equal(keys.blob(sha('a')), `classifier/v3/.sgpu/blobs/${sha('a')}`);
    assert.equal(keys.manifest('0123456789abcdef'), 'classifier/v3/.sgpu/versions/0123456789abcdef.json');
    assert.equal(keys.current, 'classifier/v3/.sgpu/current');
    assert.equal(keys.mountDir('0123456789abcdef'), 'classifier/v3/versions/0123456789abcdef');
  });

  it('rejects manifests with paths that leave the folder, or files that do not hash to the version', () => {
    for (const bad of ['../etc/passwd', '/abs', 'a/../../b', 'a//b', 'a\\b', '']) assert.equal(isSafeRelativePath(bad), false, bad);
    assert.equal(isSafeRelativePath('tok/vocab.txt'), true);
    const files = [{ path: '../x', sha256: sha('a'), size: 1 }];
    assert.throws(() => parseManifest(JSON.stringify({ v: 1, version: versionOf(files), files }), 's3://b/m.json'), /s3:\/\/b\/m.json.*unsafe path "..\/x"/);
    const good = [{ path: 'x', sha256: sha('a'), size: 1 }];
    assert.throws(() => parseManifest(JSON.stringify({ v: 1, version: '0000000000000000', files: good }), 'm'), /do not hash to version/);
    assert.equal(parseManifest(JSON.stringify({ v: 1, version: versionOf(good), files: good }), 'm').files.length, 1);
    assert.throws(() => parsePointer('not json', 's3://b/current'), /s3:\/\/b\/current is not a valid/);
  });
});
