import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { videoStream, type VideoSpec } from '../../local/mp4';

/** The simulators' videos, played by a real decoder: Chromium's, by way of a <video> element. */

let browser: Browser;
let server: Server;
let base: string;
const specs: Record<string, VideoSpec> = {
  landscape: { taskId: 'sim_landscape', seconds: 10, width: 320, height: 180 },
  portrait: { taskId: 'sim_portrait', seconds: 2.5, width: 720, height: 1280, bytes: 200_000 },
  wide: { taskId: 'sim_wide', seconds: 1, width: 448, height: 192 },
};

beforeAll(async () => {
  server = createServer((req, res) => {
    const spec = specs[(req.url ?? '').slice(1).replace(/\.mp4$/, '')];
    if (!spec) {
      res.writeHead(req.url === '/' ? 200 : 404, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>videos</title>');
      return;
    }
    const video = videoStream(spec);
    res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': video.size });
    video.stream().pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});
afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => server?.close(resolve));
});

describe('simulated videos in a browser', () => {
  it.each(Object.entries(specs))('the %s video plays for its length at its size, a grey picture to the last frame', async (name, spec) => {
    const page = await browser.newPage();
    await page.goto(`${base}/`);
    const played = await page.evaluate(async (src) => {
      // Runs in the page, where the DOM is; the test compiles without its types.
      const document = (globalThis as any).document;
      const video = document.createElement('video');
      video.muted = true;
      video.src = src;
      document.body.append(video);
      await new Promise<void>((resolve, reject) => {
        video.onloadeddata = () => resolve();
        video.onerror = () => reject(new Error(`decode error ${video.error?.code}: ${video.error?.message}`));
      });
      video.currentTime = video.duration - 0.1;
      await new Promise((resolve) => (video.onseeked = resolve));
      const canvas = document.createElement('canvas');
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      const context = canvas.getContext('2d');
      context.drawImage(video, 0, 0);
      const [r, g, b] = context.getImageData(canvas.width - 1, canvas.height - 1, 1, 1).data;
      return { duration: video.duration as number, width: video.videoWidth as number, height: video.videoHeight as number, pixel: [r, g, b] as number[] };
    }, `${base}/${name}.mp4`);
    await page.close();
    expect(played).toMatchObject({ duration: spec.seconds, width: spec.width, height: spec.height });
    expect(Math.min(...played.pixel)).toBeGreaterThan(110);
    expect(Math.max(...played.pixel)).toBeLessThan(150);
  });
});
