import { describe, expect, it } from 'vitest';
import {
  describeIssue,
  listQuerySchema,
  MAX_PROMPT_CHARS,
  submitBodySchema,
  type SubmitRequest,
} from '../../lambdas/shared/contracts';
import * as z from 'zod/mini';
import { seedCatalogModels } from '../../lambdas/shared/catalog';
import { orElse } from '../../lambdas/shared/contracts/fields';
import { upstreamStatusSchema } from '../../lambdas/shared/contracts/upstream';

/** The catalog when MODELS is unset: the seed's three models and rules. */
const seedSubmit = submitBodySchema(seedCatalogModels('duomi'));

/** The seed's own three request examples, exactly as the seed document shows them. */
const seedExamples = {
  'video generation': {
    model: 'sora-2',
    prompt: 'The car moves forward at a high speed',
    aspect_ratio: '16:9',
    duration: 15,
    image_urls: ['https://crea-img.xinzhiyun.net/upload/202502251100509684.jpg'],
  },
  'multi-character cameo': {
    model: 'sora-2',
    prompt: 'The car moves forward at a high speed',
    aspect_ratio: '16:9',
    duration: 15,
    image_urls: ['https://crea-img.xinzhiyun.net/upload/202502251100509684.jpg'],
    characters: [
      { url: 'https://v3.fal.media/files/penguin/hsR_KXBJjuF3IIVYIIDA2_output.mp4', timestamps: '0,3' },
      { url: 'https://v3.fal.media/files/penguin/hsR_KXBJjuF3IIVYIIDA2_output.mp4', timestamps: '0,3' },
    ],
    callback_url: 'https://webhook.site/f95d67b6-cbc4-475d-9ea8-93e3c1786d45',
  },
  'image to video': {
    model: 'sora-2',
    prompt: '唱歌',
    aspect_ratio: '16:9',
    image_urls: ['https://crea-img.xinzhiyun.net/upload/202502251100509684.jpg'],
    duration: 15,
    callback_url: 'https://webhook.site/2ef1a017-6ebd-4f15-9c9a-5ac3652e4abd',
  },
};

const minimal = { model: 'sora-2', prompt: 'a red fox runs through snow' };
const clip = 'https://cdn.example.com/fox.mp4';

function accepted(body: unknown): SubmitRequest {
  const result = seedSubmit.safeParse(body);
  if (!result.success) throw new Error(`expected the body to be accepted, got ${JSON.stringify(describeIssue(result.error))}`);
  return result.data;
}

function refused(body: unknown): { message: string; param?: string } {
  const result = seedSubmit.safeParse(body);
  if (result.success) throw new Error(`expected the body to be refused, got ${JSON.stringify(result.data)}`);
  return describeIssue(result.error);
}

describe('the submit body', () => {
  describe('accepts each of the seed examples as it stands', () => {
    it.each(Object.entries(seedExamples))('%s', (_name, example) => {
      const request = accepted(example);
      expect(request.model).toBe('sora-2');
      expect(request.duration).toBe(15);
      expect(request.image_urls).toEqual(example.image_urls);
      expect(request.usedDeprecatedFields).toBe(false);
    });

    it('keeps the cameo example’s two characters and its callback URL', () => {
      const request = accepted(seedExamples['multi-character cameo']);
      expect(request.characters).toHaveLength(2);
      expect(request.callback_url).toBe('https://webhook.site/f95d67b6-cbc4-475d-9ea8-93e3c1786d45');
    });
  });

  describe('model', () => {
    it.each(['sora-2', 'sora-2-pro', 'sora-2-temporary'])('accepts %s', (model) => {
      expect(accepted({ ...minimal, model }).model).toBe(model);
    });

    it('is required', () => {
      expect(refused({ prompt: 'x' })).toEqual({ message: 'model is required', param: 'model' });
    });

    it('refuses a model it does not know, naming the ones it does', () => {
      expect(refused({ ...minimal, model: 'sora-3' })).toEqual({
        message: 'model must be one of sora-2, sora-2-pro, sora-2-temporary',
        param: 'model',
      });
    });

    it.each(['__proto__', 'constructor', 'toString'])('refuses %s, a name every object has, like any unknown model', (model) => {
      expect(refused({ ...minimal, model })).toEqual({
        message: 'model must be one of sora-2, sora-2-pro, sora-2-temporary',
        param: 'model',
      });
    });
  });

  describe('prompt', () => {
    it('is required', () => {
      expect(refused({ model: 'sora-2' })).toEqual({ message: 'prompt is required', param: 'prompt' });
    });

    it('must not be only whitespace', () => {
      expect(refused({ ...minimal, prompt: ' \n\t ' })).toEqual({ message: 'prompt must not be empty', param: 'prompt' });
    });

    it('must be a string', () => {
      expect(refused({ ...minimal, prompt: 42 })).toEqual({ message: 'prompt must be a string', param: 'prompt' });
    });

    it(`may be ${MAX_PROMPT_CHARS} characters long but not one more`, () => {
      expect(accepted({ ...minimal, prompt: 'x'.repeat(MAX_PROMPT_CHARS) }).prompt).toHaveLength(MAX_PROMPT_CHARS);
      expect(refused({ ...minimal, prompt: 'x'.repeat(MAX_PROMPT_CHARS + 1) })).toEqual({
        message: 'prompt is at most 5000 characters',
        param: 'prompt',
      });
    });

    it('is kept without its surrounding whitespace', () => {
      expect(accepted({ ...minimal, prompt: '  a fox  ' }).prompt).toBe('a fox');
    });
  });

  describe('aspect_ratio', () => {
    it('defaults to 16:9', () => {
      expect(accepted(minimal).aspect_ratio).toBe('16:9');
    });

    it.each(['16:9', '9:16'])('accepts %s', (ratio) => {
      expect(accepted({ ...minimal, aspect_ratio: ratio }).aspect_ratio).toBe(ratio);
    });

    it.each(['1:1', '4:3', '16/9', ''])('refuses %j', (ratio) => {
      expect(refused({ ...minimal, aspect_ratio: ratio })).toEqual({
        message: 'aspect_ratio must be "16:9" or "9:16"',
        param: 'aspect_ratio',
      });
    });
  });

  describe('duration', () => {
    it('defaults to 10 seconds', () => {
      expect(accepted(minimal).duration).toBe(10);
    });

    it.each([10, 15])('accepts %i with every model', (duration) => {
      for (const model of ['sora-2', 'sora-2-pro', 'sora-2-temporary'])
        expect(accepted({ ...minimal, model, duration }).duration).toBe(duration);
    });

    it('accepts 25 with sora-2-pro', () => {
      expect(accepted({ ...minimal, model: 'sora-2-pro', duration: 25 }).duration).toBe(25);
    });

    it.each(['sora-2', 'sora-2-temporary'])('refuses 25 with %s', (model) => {
      expect(refused({ ...minimal, model, duration: 25 })).toEqual({
        message: `duration 25 is only available with sora-2-pro (${model} takes 10 or 15)`,
        param: 'duration',
      });
    });

    it('accepts a numeric string as the number', () => {
      expect(accepted({ ...minimal, duration: '15' }).duration).toBe(15);
      expect(accepted({ ...minimal, model: 'sora-2-pro', duration: ' 25 ' }).duration).toBe(25);
    });

    it.each([5, 20, 30, 10.5, '10s', null])('refuses %j', (duration) => {
      expect(refused({ ...minimal, duration })).toEqual({ message: 'duration must be 10 or 15', param: 'duration' });
    });
  });

  describe('image_urls', () => {
    it('defaults to none', () => {
      expect(accepted(minimal).image_urls).toEqual([]);
    });

    it('holds at most one URL', () => {
      expect(refused({ ...minimal, image_urls: ['https://a.example/1.jpg', 'https://a.example/2.jpg'] })).toEqual({
        message: 'image_urls holds at most 1 URL',
        param: 'image_urls',
      });
    });

    it.each(['not a url', 'ftp://a.example/1.jpg', '/relative/1.jpg'])('refuses the image %j, naming its position', (url) => {
      expect(refused({ ...minimal, image_urls: [url] })).toEqual({
        message: 'image_urls[] must be an http(s) URL',
        param: 'image_urls[0]',
      });
    });

    it('must be an array', () => {
      expect(refused({ ...minimal, image_urls: 'https://a.example/1.jpg' })).toEqual({
        message: 'image_urls must be an array of http(s) URLs',
        param: 'image_urls',
      });
    });
  });

  describe('characters', () => {
    const one = { url: clip, timestamps: '0,3' };

    it('defaults to none', () => {
      expect(accepted(minimal).characters).toEqual([]);
    });

    it('holds at most three', () => {
      expect(accepted({ ...minimal, characters: [one, one, one] }).characters).toHaveLength(3);
      expect(refused({ ...minimal, characters: [one, one, one, one] })).toEqual({
        message: 'characters holds at most 3 entries',
        param: 'characters',
      });
    });

    it('may arrive as a string holding the array as JSON', () => {
      expect(accepted({ ...minimal, characters: JSON.stringify([one]) }).characters).toEqual([one]);
    });

    it('may arrive in the relaxed object syntax of the seed’s own example', () => {
      const seedString = '[{ url: "https://xxx.com/xxx.mp4", timestamps: "0,3" }]';
      expect(accepted({ ...minimal, characters: seedString }).characters).toEqual([
        { url: 'https://xxx.com/xxx.mp4', timestamps: '0,3' },
      ]);
    });

    it('takes an empty string as none', () => {
      expect(accepted({ ...minimal, characters: '' }).characters).toEqual([]);
    });

    it('refuses a string that holds no array', () => {
      expect(refused({ ...minimal, characters: 'Alice and Bob' })).toEqual({
        message: 'characters must be an array of {url, timestamps} (or a string holding one)',
        param: 'characters',
      });
    });

    it('refuses a character whose url is not an http(s) URL', () => {
      expect(refused({ ...minimal, characters: [{ url: 'file:///etc/passwd', timestamps: '0,3' }] })).toEqual({
        message: 'characters[].url must be an http(s) URL',
        param: 'characters[0].url',
      });
    });

    describe('timestamps', () => {
      it.each(['0,3', '0.5,3.5', '2, 4', '7,10'])('accepts %j', (timestamps) => {
        expect(accepted({ ...minimal, characters: [{ url: clip, timestamps }] }).characters[0]!.timestamps).toBe(timestamps);
      });

      it.each([
        ['0,4', 'timestamps: a character clip is at most 3 seconds'],
        ['3,1', 'timestamps: start must be before end'],
        ['2,2', 'timestamps: start must be before end'],
        ['a,b', 'timestamps must be "start,end" in seconds, e.g. "0,3"'],
        ['-1,2', 'timestamps must be "start,end" in seconds, e.g. "0,3"'],
        ['3', 'timestamps must be "start,end" in seconds, e.g. "0,3"'],
      ])('refuses %j: %s', (timestamps, message) => {
        expect(refused({ ...minimal, characters: [{ url: clip, timestamps }] })).toEqual({
          message,
          param: 'characters[0].timestamps',
        });
      });

      it('names the offending character by position', () => {
        expect(refused({ ...minimal, characters: [one, { url: clip, timestamps: '0,4' }] }).param).toBe(
          'characters[1].timestamps',
        );
      });

      it('refuses a 4-second range sent in the seed’s relaxed syntax too', () => {
        expect(refused({ ...minimal, characters: '[{ url: "https://xxx.com/xxx.mp4", timestamps: "0,4" }]' })).toEqual({
          message: 'timestamps: a character clip is at most 3 seconds',
          param: 'characters[0].timestamps',
        });
      });
    });

    describe('@characterN in the prompt', () => {
      it('may name a character up to the number given', () => {
        expect(accepted({ ...minimal, prompt: '@character1 waves to @character2', characters: [one, one] }).prompt).toBe(
          '@character1 waves to @character2',
        );
      });

      it('may not name a character beyond the number given', () => {
        expect(refused({ ...minimal, prompt: '@character3 sings', characters: [one, one] })).toEqual({
          message: 'prompt names @character3 but 2 characters are given',
          param: 'prompt',
        });
      });

      it('may not name a character when none is given', () => {
        expect(refused({ ...minimal, prompt: '@character1 sings' })).toEqual({
          message: 'prompt names @character1 but 0 characters are given',
          param: 'prompt',
        });
      });
    });
  });

  describe('the deprecated character_url and character_timestamps', () => {
    it('are folded into one characters entry and flagged as deprecated', () => {
      const request = accepted({ ...minimal, character_url: clip, character_timestamps: '1,3' });
      expect(request.characters).toEqual([{ url: clip, timestamps: '1,3' }]);
      expect(request.usedDeprecatedFields).toBe(true);
      expect(request).not.toHaveProperty('character_url');
      expect(request).not.toHaveProperty('character_timestamps');
    });

    it('count as one character for @character1', () => {
      expect(accepted({ ...minimal, prompt: '@character1 dances', character_url: clip, character_timestamps: '0,3' }).characters).toHaveLength(1);
    });

    it('go together: a character_url without timestamps is refused', () => {
      expect(refused({ ...minimal, character_url: clip })).toEqual({
        message: 'character_url and character_timestamps go together',
        param: 'character_timestamps',
      });
    });

    it('go together: timestamps without a character_url are refused', () => {
      expect(refused({ ...minimal, character_timestamps: '0,3' })).toEqual({
        message: 'character_url and character_timestamps go together',
        param: 'character_url',
      });
    });

    it('may not be sent along with characters', () => {
      expect(
        refused({ ...minimal, characters: [{ url: clip, timestamps: '0,3' }], character_url: clip, character_timestamps: '0,3' }),
      ).toEqual({ message: 'send either characters or the deprecated character_url, not both', param: 'character_url' });
    });

    it('keep the timestamp rules', () => {
      expect(refused({ ...minimal, character_url: clip, character_timestamps: '0,4' })).toEqual({
        message: 'timestamps: a character clip is at most 3 seconds',
        param: 'character_timestamps',
      });
    });
  });

  describe('callback_url', () => {
    it('accepts an http(s) URL', () => {
      expect(accepted({ ...minimal, callback_url: 'https://hooks.example.com/v?x=1' }).callback_url).toBe(
        'https://hooks.example.com/v?x=1',
      );
    });

    it.each(['not a url', 'ftp://hooks.example.com/v', 'javascript:alert(1)'])('refuses %j', (url) => {
      expect(refused({ ...minimal, callback_url: url })).toEqual({
        message: 'callback_url must be an http(s) URL',
        param: 'callback_url',
      });
    });
  });

  it('ignores fields it does not know', () => {
    expect(accepted({ ...minimal, seed: 7 })).not.toHaveProperty('seed');
  });

  it('reports the body itself when it is not an object', () => {
    expect(refused(['sora-2']).param).toBeUndefined();
  });
});

describe('the list query', () => {
  it('defaults to 20 tasks and no cursor', () => {
    expect(listQuerySchema().parse({})).toEqual({ limit: 20 });
  });

  it('reads limit from its query-string text', () => {
    expect(listQuerySchema().parse({ limit: '1', after: 'task_01' })).toEqual({ limit: 1, after: 'task_01' });
    expect(listQuerySchema().parse({ limit: '100' }).limit).toBe(100);
  });

  it.each([
    ['0', 'limit must be at least 1'],
    ['101', 'limit is at most 100'],
    ['2.5', 'limit must be a whole number'],
    ['ten', 'limit must be a number from 1 to 100'],
  ])('refuses limit=%s: %s', (limit, message) => {
    const result = listQuerySchema().safeParse({ limit });
    expect(result.success).toBe(false);
    expect(describeIssue(result.error!)).toEqual({ message, param: 'limit' });
  });

  it('refuses a cursor longer than any task id', () => {
    const result = listQuerySchema().safeParse({ after: 'x'.repeat(65) });
    expect(result.success).toBe(false);
    expect(describeIssue(result.error!).param).toBe('after');
  });
});

describe('an upstream answer with a field the gateway can do without', () => {
  it('reads a progress that is not a number as 0, and keeps the rest of the answer', () => {
    const parse = (progress: unknown) => upstreamStatusSchema().parse({ id: 'job-1', state: 'running', progress });
    expect(parse('42').progress).toBe(42);
    expect(parse(17.5).progress).toBe(17.5);
    expect(parse('about half').progress).toBe(0);
    expect(parse({ percent: 50 }).progress).toBe(0);
    expect(upstreamStatusSchema().parse({ id: 'job-1', state: 'running' }).progress).toBeUndefined();
    expect(parse('n/a')).toMatchObject({ id: 'job-1', state: 'running' });
  });

  it('orElse gives its fallback for any input its schema refuses', () => {
    const flag = orElse(z.boolean(), false);
    expect(flag.parse(true)).toBe(true);
    expect(flag.parse('yes')).toBe(false);
    expect(flag.parse(null)).toBe(false);
  });
});
