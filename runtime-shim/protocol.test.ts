import assert from 'node:assert/strict';
import {
  containsTypedArray,
  containsTypedTag,
  decodeOutput,
  decodeValue,
  encodeInput,
  encodeValue,
} from './protocol';

/** What a value looks like on the other side of the wire. */
function roundTrip(value: unknown): unknown {
  return decodeValue(JSON.parse(JSON.stringify(encodeValue(value))));
}

describe('protocol: value encoding', function () {
  this.timeout(2000);

  it('carries a Uint8Array across JSON as a Uint8Array with the same bytes', () => {
    const bytes = new Uint8Array([0, 1, 127, 128, 255]);
    const wire = JSON.parse(JSON.stringify(encodeValue(bytes))) as Record<string, unknown>;
    assert.equal(wire.$typed, 'Uint8Array');
    assert.equal(typeof wire.base64, 'string');
    const back = decodeValue(wire);
    assert.ok(back instanceof Uint8Array);
    assert.deepEqual([...(back as Uint8Array)], [0, 1, 127, 128, 255]);
  });

  it('carries a Float32Array across JSON with every float exactly preserved', () => {
    const floats = new Float32Array([0, -0, 1.5, -3.25, 3.4028234663852886e38, 1e-45, Math.PI, -Infinity, Infinity]);
    const back = roundTrip(floats);
    assert.ok(back instanceof Float32Array);
    assert.equal((back as Float32Array).length, floats.length);
    for (let i = 0; i < floats.length; i += 1) {
      assert.ok(Object.is((back as Float32Array)[i], floats[i]), `element ${i}: ${(back as Float32Array)[i]} !== ${floats[i]}`);
    }
  });

  it('encodes only the viewed part of a Float32Array that sits at a non-zero byteOffset of a bigger buffer', () => {
    const whole = new Float32Array([100, 200, 1.25, 2.5, 3.75, 300]);
    const view = new Float32Array(whole.buffer, 2 * Float32Array.BYTES_PER_ELEMENT, 3);
    assert.equal(view.byteOffset, 8);
    const back = roundTrip(view) as Float32Array;
    assert.ok(back instanceof Float32Array);
    assert.deepEqual([...back], [1.25, 2.5, 3.75]);
    assert.equal(back.byteOffset, 0);
    assert.equal(back.buffer.byteLength, 12);
  });

  it('sends a Buffer as a Uint8Array (not as Buffer JSON) and rebuilds it as a Uint8Array', () => {
    const buffer = Buffer.from('hello, wire');
    const encoded = encodeValue(buffer) as Record<string, unknown>;
    assert.equal(encoded.$typed, 'Uint8Array');
    assert.equal(encoded.base64, buffer.toString('base64'));
    const back = roundTrip(buffer);
    assert.ok(back instanceof Uint8Array);
    assert.equal(Buffer.from(back as Uint8Array).toString('utf8'), 'hello, wire');
  });

  it('encodes a small pooled Buffer by its own bytes, not the bytes of the shared pool', () => {
    // Buffer.from of a short string lives in a shared pool at some byteOffset.
    Buffer.from('some other pooled bytes before');
    const pooled = Buffer.from('xyz');
    const back = roundTrip(pooled) as Uint8Array;
    assert.equal(Buffer.from(back).toString('utf8'), 'xyz');
  });

  it('rebuilds typed arrays nested inside objects and arrays and leaves their neighbours alone', () => {
    const value = {
      name: 'batch',
      count: 2,
      flags: [true, false, null],
      items: [
        { id: 'a', embedding: new Float32Array([0.5, -0.5]) },
        { id: 'b', raw: new Uint8Array([9, 8, 7]) },
      ],
      deep: { deeper: [[new Int16Array([-2, 2])]] },
    };
    const back = roundTrip(value) as typeof value;
    assert.equal(back.name, 'batch');
    assert.equal(back.count, 2);
    assert.deepEqual(back.flags, [true, false, null]);
    assert.equal(back.items[0].id, 'a');
    assert.ok(back.items[0].embedding instanceof Float32Array);
    assert.deepEqual([...back.items[0].embedding], [0.5, -0.5]);
    assert.ok(back.items[1].raw instanceof Uint8Array);
    assert.deepEqual([...back.items[1].raw], [9, 8, 7]);
    assert.ok(back.deep.deeper[0][0] instanceof Int16Array);
    assert.deepEqual([...back.deep.deeper[0][0]], [-2, 2]);
  });

  it('leaves plain JSON values unchanged through encode and decode', () => {
    const plain = { s: 'text', n: 1.5, z: 0, b: false, nil: null, list: [1, 'two', { three: [3] }], empty: {}, none: [] };
    assert.deepEqual(encodeValue(plain), plain);
    assert.deepEqual(decodeValue(plain), plain);
    assert.deepEqual(roundTrip(plain), plain);
    for (const scalar of ['x', 0, 42, true, false, null]) {
      assert.equal(encodeValue(scalar), scalar);
      assert.equal(decodeValue(scalar), scalar);
    }
  });

  it('does not treat an object with a $typed field naming no typed array as binary', () => {
    const lookalike = { $typed: 'NotAnArray', base64: 'AAAA' };
    assert.deepEqual(decodeValue(lookalike), lookalike);
  });

  it('passes values without typed arrays through encodeInput and decodeOutput as the same object', () => {
    const plain = { a: [1, 2], b: { c: 'd' } };
    assert.equal(encodeInput(plain), plain);
    assert.equal(decodeOutput(plain), plain);
  });

  it('encodes through encodeInput and decodes through decodeOutput when a typed array is inside', () => {
    const value = { vec: new Float32Array([1, 2]) };
    const encoded = encodeInput(value) as { vec: { $typed: string } };
    assert.equal(encoded.vec.$typed, 'Float32Array');
    const decoded = decodeOutput(JSON.parse(JSON.stringify(encoded))) as { vec: Float32Array };
    assert.ok(decoded.vec instanceof Float32Array);
    assert.deepEqual([...decoded.vec], [1, 2]);
  });
});

describe('protocol: containsTypedTag / containsTypedArray', function () {
  this.timeout(2000);

  it('finds a $typed tag at the top, inside objects and inside arrays', () => {
    const tag = encodeValue(new Uint8Array([1]));
    assert.equal(containsTypedTag(tag), true);
    assert.equal(containsTypedTag({ a: { b: tag } }), true);
    assert.equal(containsTypedTag([1, [2, [tag]]]), true);
    assert.equal(containsTypedTag({ list: [{ x: 1 }, { y: tag }] }), true);
  });

  it('reports no $typed tag in plain values, scalars and a non-string $typed field', () => {
    assert.equal(containsTypedTag({ a: 1, b: [2, 'three', { c: null }] }), false);
    assert.equal(containsTypedTag([]), false);
    assert.equal(containsTypedTag(null), false);
    assert.equal(containsTypedTag('$typed'), false);
    assert.equal(containsTypedTag(7), false);
    assert.equal(containsTypedTag({ $typed: 1 }), false);
  });

  it('finds a typed array nested anywhere in a value and none in plain values', () => {
    assert.equal(containsTypedArray({ a: [{ b: new Float32Array(1) }] }), true);
    assert.equal(containsTypedArray(Buffer.from('x')), true);
    assert.equal(containsTypedArray({ a: [{ b: [1, 2, 3] }] }), false);
    assert.equal(containsTypedArray(undefined), false);
  });
});
