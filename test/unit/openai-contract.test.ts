import { describe, expect, it } from 'vitest';
import { seedCatalogModels } from '../../lambdas/shared/catalog';
import { OpenaiFieldError, openaiToSeedBody, ratioOfSize, videoListQuerySchema, videoObjectSchema } from '../../lambdas/shared/contracts/openai';
import { submitBodySchema } from '../../lambdas/shared/contracts/submit';
import { videoObject } from '../../lambdas/shared/core/openai-view';
import { openApiDocument } from '../../lambdas/shared/openapi';

const models = seedCatalogModels('simulated');

describe('the OpenAI create, as a seed body', () => {
  it('maps sizes to the ratio they are, within 2 %, and nothing else', () => {
    expect(ratioOfSize('1280x720', ['16:9', '9:16'])).toBe('16:9');
    expect(ratioOfSize('1792x1024', ['16:9', '9:16'])).toBe('16:9');
    expect(ratioOfSize('1024x1792', ['16:9', '9:16'])).toBe('9:16');
    expect(ratioOfSize('1024x1024', ['16:9', '9:16'])).toBeUndefined();
    expect(ratioOfSize('1280*720', ['16:9'])).toBeUndefined();
  });

  it('turns seconds, size and input_reference[image_url] into duration, aspect_ratio and image_urls', () => {
    const seed = openaiToSeedBody(
      { model: 'sora-2-pro', prompt: 'p', seconds: '25', size: '720x1280', 'input_reference[image_url]': 'https://example.com/a.png', callback_url: 'https://example.com/hook' },
      models,
    );
    expect(seed).toEqual({ model: 'sora-2-pro', prompt: 'p', duration: '25', aspect_ratio: '9:16', image_urls: ['https://example.com/a.png'], callback_url: 'https://example.com/hook' });
    expect(submitBodySchema(models).parse(seed)).toMatchObject({ duration: 25, aspect_ratio: '9:16' });
    expect(openaiToSeedBody({ model: 'sora-2', prompt: 'p', input_reference: { image_url: 'https://example.com/b.png' } }, models).image_urls).toEqual(['https://example.com/b.png']);
  });

  it('refuses a size outside the model\'s ratios, naming size', () => {
    const attempt = () => openaiToSeedBody({ model: 'sora-2', prompt: 'p', size: '1024x1024' }, models);
    expect(attempt).toThrow(OpenaiFieldError);
    expect(attempt).toThrow(/size must be WxH in one of sora-2's aspect ratios \(16:9, 9:16\)/);
  });

  it('lists in either order, newest first by default', () => {
    expect(videoListQuerySchema().parse({})).toEqual({ limit: 20, order: 'desc' });
    expect(videoListQuerySchema().safeParse({ order: 'sideways' }).success).toBe(false);
  });
});

describe('the Video object', () => {
  it('is a task in OpenAI\'s words, whichever dialect made it', () => {
    const base = { id: 'task_1', owner: 'o', progress: 40, model: 'sora-2', upstream_model: 'm', prompt: 'p', aspect_ratio: '9:16' as const, duration: 15, image_urls: [], characters: [], created_at: 1_700_000_000_000, updated_at: 1_700_000_000_000, deadline_at: 0, submit_attempts: 1, expires_at: 1_800_000_000 };
    const running = videoObject({ ...base, state: 'archiving' });
    expect(videoObjectSchema().parse(running)).toEqual({
      id: 'task_1', object: 'video', model: 'sora-2', status: 'in_progress', progress: 40, created_at: 1_700_000_000, completed_at: null,
      expires_at: 1_800_000_000, prompt: 'p', size: '720x1280', seconds: '15', remixed_from_video_id: null, error: null,
    });
    expect(videoObject({ ...base, state: 'succeeded', size: '1024x1792', completed_at: 1_700_000_060_000 })).toMatchObject({ status: 'completed', progress: 100, size: '1024x1792', completed_at: 1_700_000_060 });
    expect(videoObject({ ...base, state: 'failed', error_code: 'cancelled', error_message: 'cancelled by the client' }).error).toEqual({ code: 'cancelled', message: 'cancelled by the client' });
  });

  it('shows the seconds and size delivered once the video is measured, the requested ones before', () => {
    const base = { id: 'task_2', owner: 'o', progress: 100, model: 'sora-2', upstream_model: 'm', prompt: 'p', aspect_ratio: '16:9' as const, duration: 10, size: '1280x720', image_urls: [], characters: [], created_at: 1_700_000_000_000, updated_at: 1_700_000_000_000, deadline_at: 0, submit_attempts: 1, state: 'succeeded' as const };
    expect(videoObject(base)).toMatchObject({ size: '1280x720', seconds: '10' });
    // The upstream delivered 4 s at 854x480 for a 10 s 1280x720 request: the client sees that.
    expect(videoObject({ ...base, video_duration_seconds: 4.0021, video_width: 854, video_height: 480, video_short: true })).toMatchObject({ size: '854x480', seconds: '4' });
    expect(videoObject({ ...base, video_duration_seconds: 9.966, video_width: 1280, video_height: 720 })).toMatchObject({ size: '1280x720', seconds: '9.97' });
  });

  it('and both dialects are in the OpenAPI document', () => {
    const doc = openApiDocument(models) as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths['/v1/videos']!)).toEqual(['post', 'get']);
    expect(Object.keys(doc.paths['/v1/videos/{id}']!)).toEqual(['get', 'delete']);
    expect(doc.paths['/v1/videos/{id}/content']).toHaveProperty('get');
    expect(doc.paths['/v1/videos/generations/{id}']).toHaveProperty('delete');
    expect(doc.paths['/v1/videos/generations']).toHaveProperty('post');
  });
});
