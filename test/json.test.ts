// Lossless JSON: what is parsed prints back with the digits that were stored.
import fc from 'fast-check';
import { ExactNumber, exactNumber, isExactNumber, parseExactJson, stringifyExactJson } from '../src/json';

/** A random JSON number token: sign, up to `digits` integer digits, a fraction, an exponent. */
const numberToken = (digits = 400) => fc.tuple(
  fc.boolean(),
  fc.oneof(fc.constant('0'), fc.tuple(fc.integer({ min: 1, max: 9 }), fc.stringMatching(new RegExp(`^[0-9]{0,${digits}}$`))).map(([a, b]) => `${a}${b}`)),
  fc.option(fc.stringMatching(/^[0-9]{1,300}$/), { nil: undefined }),
  fc.option(fc.tuple(fc.constantFrom('e', 'E'), fc.constantFrom('', '+', '-'), fc.stringMatching(/^[0-9]{1,3}$/)).map((p) => p.join('')), { nil: undefined }),
).map(([neg, int, frac, exp]) => `${neg ? '-' : ''}${int}${frac === undefined ? '' : `.${frac}`}${exp ?? ''}`);

/** JSON text (compact) with random number tokens nested in arrays and objects (keys that are no
 * array index, which JavaScript objects would list first). */
const jsonText = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    numberToken(),
    fc.string().map((s) => JSON.stringify(s)),
    fc.constantFrom('true', 'false', 'null'),
    fc.array(tie('value')).map((items) => `[${items.join(',')}]`),
    fc.array(fc.tuple(fc.string().map((s) => `k${s}`), tie('value'))).map((pairs) => {
      const seen = new Set<string>();
      const unique = pairs.filter(([k]) => !seen.has(k) && seen.add(k));
      return `{${unique.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
    }),
  ),
})).value;

describe('parseExactJson and stringifyExactJson', () => {
  test('the numbers JSON.parse changes come back with their digits', () => {
    const text = '{"n":99999999999999999999.9999999999,"b":-9223372036854775808,"j":1.000000000000000000001,"k":123456789012345678901234567890,"one":1.0}';
    const value = parseExactJson(text) as Record<string, unknown>;
    expect(value.b).toEqual(new ExactNumber('-9223372036854775808'));
    expect(value.one).toEqual(new ExactNumber('1.0'));
    expect(stringifyExactJson(value)).toBe(text);
    expect(JSON.stringify(JSON.parse(text))).not.toBe(text); // what the platform does instead
  });

  test('numbers a JavaScript number prints back identically stay plain numbers', () => {
    expect(parseExactJson('[42,-7,0.1,12.5,9007199254740991,100000000000000000000,0]')).toEqual([42, -7, 0.1, 12.5, 9007199254740991, 1e20, 0]);
    for (const t of ['1.0', '10.50', '9007199254740993', '-0', '1E+2', '1e2', '0.10']) {
      expect(isExactNumber(exactNumber(t))).toBe(true);
    }
  });

  test('an ExactNumber: text, JSON.stringify writes the digits as a string, valueOf approximates, toBigInt is exact', () => {
    const n = new ExactNumber('-9223372036854775808');
    expect(String(n)).toBe('-9223372036854775808');
    expect(JSON.stringify({ n })).toBe('{"n":"-9223372036854775808"}');
    expect(+n).toBe(-9223372036854775808);
    expect(n.toBigInt()).toBe(-9223372036854775808n);
    expect(() => new ExactNumber('1.5').toBigInt()).toThrow(RangeError);
    expect(() => new ExactNumber('1.')).toThrow(SyntaxError);
    expect(() => new ExactNumber('+1')).toThrow(SyntaxError);
  });

  test('strings that contain digits, escapes and quotes are left alone', () => {
    const text = '{"a":"12345678901234567890","b":"x\\"9007199254740993\\\\","c":["\\u0000exact-1:0"],"__proto__":1.50}';
    const value = parseExactJson(text) as Record<string, unknown>;
    expect(value.a).toBe('12345678901234567890');
    expect(value.b).toBe('x"9007199254740993\\');
    expect(value.c).toEqual(['\u0000exact-1:0']);
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(value, '__proto__')?.value).toEqual(new ExactNumber('1.50'));
    expect(stringifyExactJson(value)).toBe(text);
  });

  test('invalid JSON is a SyntaxError, as with JSON.parse', () => {
    for (const t of ['', '01', '[1,]', '{"a":1.}', '-', '[9007199254740993', 'nul']) {
      expect(() => parseExactJson(t)).toThrow(SyntaxError);
    }
  });

  test('stringify writes bigints as digits and handles toJSON, undefined and cycles like JSON.stringify', () => {
    expect(stringifyExactJson({ a: 12345678901234567890n, d: new Date(0), u: undefined, f: () => 1, l: [undefined] }))
      .toBe('{"a":12345678901234567890,"d":"1970-01-01T00:00:00.000Z","l":[null]}');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => stringifyExactJson(cyclic)).toThrow(TypeError);
    expect(stringifyExactJson({ a: [new ExactNumber('1.0'), {}], b: [] }, 2)).toBe('{\n  "a": [\n    1.0,\n    {}\n  ],\n  "b": []\n}');
  });

  test('property: random JSON with numbers of up to 400 digits prints back byte for byte', () => {
    fc.assert(fc.property(jsonText, (text) => {
      const value = parseExactJson(text);
      expect(stringifyExactJson(value)).toBe(text);
    }), { numRuns: 300 });
  });

  test('property: every plain number returned prints as its token; every other token is an ExactNumber', () => {
    fc.assert(fc.property(numberToken(30), (token) => {
      const v = parseExactJson(token);
      if (typeof v === 'number') expect(String(v)).toBe(token);
      else expect(v).toEqual(new ExactNumber(token));
    }), { numRuns: 1000 });
  });

  test('property: for values without ExactNumbers it is JSON.stringify, with and without indentation', () => {
    fc.assert(fc.property(fc.jsonValue(), fc.option(fc.integer({ min: 0, max: 12 }), { nil: undefined }), (value, space) => {
      expect(stringifyExactJson(value, space)).toBe(JSON.stringify(value, null, space));
      expect(parseExactJson(JSON.stringify(value))).toEqual(JSON.parse(JSON.stringify(value)));
    }), { numRuns: 300 });
  });
});
