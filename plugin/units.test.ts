import assert from 'node:assert/strict';
import { parseDurationMs, parseMemoryMiB } from './units';

describe('units', () => {
  it('parses durations in ms, s, m and h, and bare numbers as seconds', () => {
    assert.equal(parseDurationMs('250ms'), 250);
    assert.equal(parseDurationMs('60s'), 60_000);
    assert.equal(parseDurationMs('1.5m'), 90_000);
    assert.equal(parseDurationMs('2h'), 7_200_000);
    assert.equal(parseDurationMs(5), 5_000);
  });

  it('rejects durations it cannot read', () => {
    for (const bad of ['', '60', 'soon', '-1s', 0, -3, '1d']) assert.equal(parseDurationMs(bad), undefined, String(bad));
  });

  it('parses memory sizes to MiB', () => {
    assert.equal(parseMemoryMiB('16Gi'), 16_384);
    assert.equal(parseMemoryMiB('512Mi'), 512);
    assert.equal(parseMemoryMiB('1G'), 954);
    assert.equal(parseMemoryMiB(2048), 2048);
    assert.equal(parseMemoryMiB('lots'), undefined);
    assert.equal(parseMemoryMiB(1.5), undefined);
  });
});
