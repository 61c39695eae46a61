/**
 * JSON with the relaxations of JavaScript object literals that clients of the seed provider
 * send in a `characters` string (`[{ url: "…", timestamps: "0,3" }]`): unquoted keys,
 * single-quoted strings, trailing commas and comments, the JSON5 numbers (hex, leading or
 * trailing point, a sign, Infinity, NaN). About 2 KB minified where the json5 package
 * adds 27 KB to every Lambda that parses a submit. Throws a SyntaxError on anything else.
 */
export function parseRelaxedJson(text: string): unknown {
  let at = 0;
  let depth = 0;

  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at position ${at}`);
  };

  const skipSpace = () => {
    for (;;) {
      const c = text[at];
      if (c === undefined) return;
      if (/\s|\uFEFF/.test(c)) at++;
      else if (text.startsWith('//', at)) {
        const end = text.slice(at).search(/[\n\r\u2028\u2029]/);
        at = end < 0 ? text.length : at + end;
      } else if (text.startsWith('/*', at)) {
        const end = text.indexOf('*/', at + 2);
        if (end < 0) fail('unterminated comment');
        at = end + 2;
      } else return;
    }
  };

  const escapes: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '0': '\0' };

  const string = (): string => {
    const quote = text[at++]!;
    let out = '';
    for (;;) {
      const c = text[at++];
      if (c === undefined || c === '\n' || c === '\r') fail('unterminated string');
      if (c === quote) return out;
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = text[at++];
      if (e === undefined) fail('unterminated string');
      if (e === 'u' || e === 'x') {
        const digits = text.slice(at, at + (e === 'u' ? 4 : 2));
        if (!/^[0-9a-fA-F]+$/.test(digits) || digits.length !== (e === 'u' ? 4 : 2)) fail('bad escape');
        out += String.fromCharCode(parseInt(digits, 16));
        at += digits.length;
      } else if (e === '\r') {
        if (text[at] === '\n') at++;
      } else if (e !== '\n' && e !== '\u2028' && e !== '\u2029') out += escapes[e!] ?? e;
    }
  };

  const number = (): number => {
    const m = /^[+-]?(?:Infinity|NaN|0[xX][0-9a-fA-F]+|(?:(?:0|[1-9]\d*)(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(?![\w$.])/.exec(text.slice(at));
    if (!m) return fail('unexpected character');
    at += m[0].length;
    const sign = m[0].startsWith('-') ? -1 : 1;
    const body = m[0].replace(/^[+-]/, '');
    return sign * (/^0[xX]/.test(body) ? parseInt(body, 16) : Number(body));
  };

  const key = (): string => {
    const c = text[at];
    if (c === '"' || c === "'") return string();
    const m = /^[$_\p{L}][$_\p{L}\p{N}\u200C\u200D]*/u.exec(text.slice(at));
    if (!m) return fail('expected a key');
    at += m[0].length;
    return m[0];
  };

  const value = (): unknown => {
    skipSpace();
    const c = text[at];
    if (c === '{' || c === '[') {
      if (++depth > 100) fail('nested too deep');
      const result = c === '{' ? object() : array();
      depth--;
      return result;
    }
    if (c === '"' || c === "'") return string();
    for (const [word, literal] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const)
      if (text.startsWith(word, at)) {
        at += word.length;
        return literal;
      }
    return number();
  };

  /** After an item: a comma (possibly trailing) or the closing bracket. True when closed. */
  const next = (close: string): boolean => {
    skipSpace();
    if (text[at] === ',') {
      at++;
      skipSpace();
    } else if (text[at] !== close) fail(`expected , or ${close}`);
    if (text[at] !== close) return false;
    at++;
    return true;
  };

  function array(): unknown[] {
    at++;
    const out: unknown[] = [];
    skipSpace();
    if (text[at] === ']') {
      at++;
      return out;
    }
    do out.push(value());
    while (!next(']'));
    return out;
  }

  function object(): Record<string, unknown> {
    at++;
    const out: Record<string, unknown> = {};
    skipSpace();
    if (text[at] === '}') {
      at++;
      return out;
    }
    do {
      skipSpace();
      const k = key();
      skipSpace();
      if (text[at++] !== ':') fail('expected :');
      // An own property even for `__proto__`, as JSON.parse makes it: never the prototype.
      Object.defineProperty(out, k, { value: value(), enumerable: true, writable: true, configurable: true });
    } while (!next('}'));
    return out;
  }

  const result = value();
  skipSpace();
  if (at < text.length) fail('unexpected text after the value');
  return result;
}
