import JSON5 from 'json5';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseRelaxedJson } from '../../lambdas/shared/contracts/relaxed-json';

/** What json5 (the reference for the syntax) makes of a text: its value, or that it refuses it. */
const reference = (text: string) => {
  try {
    return { value: JSON5.parse(text) as unknown };
  } catch {
    return { refused: true };
  }
};
const ours = (text: string) => {
  try {
    return { value: parseRelaxedJson(text) };
  } catch (error) {
    expect(error).toBeInstanceOf(SyntaxError);
    return { refused: true };
  }
};

describe('the relaxed characters syntax', () => {
  it('reads the seed’s own example', () => {
    expect(parseRelaxedJson('[{ url: "https://xxx.com/xxx.mp4", timestamps: "0,3" }]')).toEqual([
      { url: 'https://xxx.com/xxx.mp4', timestamps: '0,3' },
    ]);
  });

  it.each([
    '[{ url: "https://example.com/c.mp4", timestamps: "0,3" }]',
    "[{url:'https://example.com/c.mp4',timestamps:'1,2',},]",
    '[{"url":"https://example.com/c.mp4","timestamps":"0,3"}]',
    "[{ 'url': 'it\\'s', timestamps: \"say \\\"hi\\\"\" }]",
    '// a comment\n[/* and another */ 1, 2,]',
    '[+1, -2.5, .5, 5., 0x1F, 1e3, Infinity, -Infinity, NaN, true, false, null]',
    '{ $a: 1, _b: [], "c d": {}, é: "\\u00e9\\x41\\n\\t" }',
    '"line\\\ncontinued"',
    '[', '[{]', '{}', 'null', '[null]', '[[[[[[[[[[]]]]]]]]]]', 'Infinity', '0x10', ' ', '', '[1 2]', '{a}', '{a:1,,}', '[,]',
    "'unterminated", '/* open', '[1]]', 'nul', '01', '{1: 2}', '"\\u12"', '["a\nb"]',
  ])('reads %j as json5 does', (text) => {
    expect(ours(text)).toEqual(reference(text));
  });

  it('makes __proto__ an own key, never the prototype', () => {
    const parsed = parseRelaxedJson('[{url: "https://example.com/c.mp4", __proto__: {polluted: 1}}]') as Record<string, unknown>[];
    expect(Object.getPrototypeOf(parsed[0])).toBe(Object.prototype);
    expect(Object.keys(parsed[0]!)).toEqual(['url', '__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses nesting deeper than any characters list, instead of running out of stack', () => {
    expect(() => parseRelaxedJson('['.repeat(5000))).toThrow(SyntaxError);
    expect(() => parseRelaxedJson(`${'['.repeat(200)}${']'.repeat(200)}`)).toThrow('nested too deep');
  });

  it('agrees with json5 on character lists in every quoting style', () => {
    const text = fc.string({ unit: 'grapheme-ascii', maxLength: 12 });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(text, text), { maxLength: 4 }),
        fc.constantFrom('json', 'relaxed', 'single'),
        fc.boolean(),
        (entries, style, trailing) => {
          const q = style === 'single' ? "'" : '"';
          const quote = (s: string) => q + s.replace(/\\/g, '\\\\').replace(new RegExp(q, 'g'), `\\${q}`) + q;
          const key = (k: string) => (style === 'json' ? `"${k}"` : k);
          const body = entries.map(([u, t]) => `{ ${key('url')}: ${quote(u)}, ${key('timestamps')}: ${quote(t)}${trailing ? ',' : ''} }`);
          const textIn = `[${body.join(', ')}${trailing && body.length ? ',' : ''}]`;
          expect(ours(textIn)).toEqual(reference(textIn));
        },
      ),
    );
  });

  it('agrees with json5 on arbitrary text, accepted or refused', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 30 }), fc.json().map((j) => j.replace(/"(\w+)":/g, '$1:'))), (text) => {
        expect(ours(text)).toEqual(reference(text));
      }),
      { numRuns: 500 },
    );
  });
});
