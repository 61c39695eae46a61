import { createHash, randomUUID } from 'node:crypto';
import type { Busboy } from 'busboy';
import { submitBodySchema } from '../contracts/submit';
import { openaiToSeedBody, OpenaiFieldError, seedToOpenaiParam } from '../contracts/openai';
import type { TaskRecord } from '../contracts/task';
import { MAX_INPUT_IMAGE_BYTES, MAX_VIDEOS_BODY_BYTES } from '../contracts/api';
import { ApiError, bodyTooLarge, header, parseJsonBody, rawBody, json, type HttpEvent, type HttpResult } from '../http';
import { imageKind, type ImageKind } from '../images';
import { inputKey } from '../input-images';
import { videoObject } from './openai-view';
import { createTask, refusedAtOnce, type SubmitNeeds, type TaskExtras } from './submit';


interface UploadedImage extends ImageKind {
  bytes: Buffer;
}

/**
 * A multipart/form-data body: its text fields, and the `input_reference` file if one was sent.
 * busboy is evaluated with the first multipart body (the seed dialect's JSON submits never need it).
 */
async function parseMultipart(event: HttpEvent, type: string): Promise<{ fields: Record<string, string>; image?: UploadedImage }> {
  const { default: busboy } = await import('busboy');
  return new Promise((resolve, reject) => {
    const fields: Record<string, string> = {};
    let image: UploadedImage | undefined;
    let failure: ApiError | undefined;
    let parser: Busboy;
    try {
      // busboy flags a file on reaching fileSize bytes: one more than the cap lets an image of exactly the cap through.
      parser = busboy({ headers: { 'content-type': type }, limits: { fileSize: MAX_INPUT_IMAGE_BYTES + 1, files: 1, fields: 50 } });
    } catch {
      reject(ApiError.invalid('request body is not valid multipart/form-data'));
      return;
    }
    parser.on('field', (name, value) => {
      fields[name] = value;
    });
    parser.on('file', (name, stream) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('limit', () => {
        failure = new ApiError(413, 'payload_too_large', `input_reference is over ${MAX_INPUT_IMAGE_BYTES / 1024 / 1024} MiB`, 'input_reference');
      });
      stream.on('end', () => {
        if (name !== 'input_reference') {
          failure ??= ApiError.invalid(`unexpected file field ${name}`, name);
          return;
        }
        const bytes = Buffer.concat(chunks);
        const kind = imageKind(bytes);
        if (!kind) failure ??= ApiError.invalid('input_reference must be a PNG, JPEG or WebP image', 'input_reference');
        else image = { bytes, ...kind };
      });
    });
    parser.on('error', () => reject(ApiError.invalid('request body is not valid multipart/form-data')));
    parser.on('close', () => (failure ? reject(failure) : resolve({ fields, image })));
    parser.end(rawBody(event));
  });
}

export async function createBody(event: HttpEvent): Promise<{ fields: Record<string, unknown>; image?: UploadedImage }> {
  const type = header(event, 'content-type') ?? '';
  if (/^multipart\/form-data/i.test(type.trim())) {
    if (rawBody(event).length > MAX_VIDEOS_BODY_BYTES) throw bodyTooLarge(MAX_VIDEOS_BODY_BYTES);
    return parseMultipart(event, type);
  }
  const body = parseJsonBody(event);
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw ApiError.invalid('request body must be a JSON object');
  return { fields: body as Record<string, unknown> };
}

/** A seed rule's complaint, in the OpenAI dialect's field names. */
function asOpenaiError(error: ApiError): ApiError {
  const param = error.param === undefined ? undefined : (seedToOpenaiParam[error.param] ?? error.param);
  const seedName = error.param?.replace(/\[\d+\]$/, '');
  const message = seedName && param && seedName !== param ? error.message.replace(seedName, param) : error.message;
  return new ApiError(error.status, error.code, message, param, error.headers);
}

/**
 * The creates of OpenAI's SDK, which retries a 5xx and sends no Idempotency-Key of its own:
 * their 5xx answers say `x-should-retry: false`, since the task may be recorded (see `httpHandler`).
 */
export const sdkCreateRoutes: ReadonlySet<string> = new Set(['POST /v1/videos', 'POST /v1/videos/{id}/remix']);

/** `POST /v1/videos`: OpenAI's create, made into the same task a seed submit makes. */
export async function createVideo(event: HttpEvent, d: SubmitNeeds): Promise<HttpResult> {
  const key = await d.keys.authenticate(event);
  const { fields, image } = await createBody(event);
  const models = d.config.catalog.models;
  let seedBody: Record<string, unknown>;
  try {
    seedBody = openaiToSeedBody(fields, models, image ? ['https://upload.invalid/input_reference'] : []);
  } catch (error) {
    if (error instanceof OpenaiFieldError) throw ApiError.invalid(error.message, error.param);
    throw error;
  }
  const parsed = submitBodySchema(models).safeParse(seedBody);
  if (!parsed.success) throw asOpenaiError(ApiError.fromZod(parsed.error));
  const request = parsed.data;
  const extras: TaskExtras = { dialect: 'openai', ...(typeof fields.size === 'string' ? { size: fields.size.trim() } : {}) };
  const identity = { ...request, ...extras, image_urls: image ? [`sha256:${createHash('sha256').update(image.bytes).digest('hex')}`] : request.image_urls };
  try {
    if (image) {
      // The task keeps the image's key, not a link: each submit to an upstream signs its own.
      extras.input_image = inputKey(randomUUID(), image.ext);
      await d.inputs.put(extras.input_image, image.bytes, image.contentType);
      request.image_urls = [];
    }
    const task = refusedAtOnce(await createTask(event, key, request, d, extras, identity));
    return json(200, videoObject(task));
  } catch (error) {
    throw error instanceof ApiError && error.status === 400 ? asOpenaiError(error) : error;
  }
}
