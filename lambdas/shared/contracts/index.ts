/**
 * Every shape that crosses a boundary of the gateway: the client API, the task record, the
 * upstream dialect, the queue messages. Handlers, the local runtime, the OpenAPI document
 * and the tests all take their shapes from here.
 *
 * One module per concern, and Lambda code imports the module it needs rather than this
 * index, so a Lambda bundles only what it uses; schemas that are needed only per request
 * (or only for the OpenAPI document) are built on first use (`lazySchema`), so loading a
 * Lambda builds only the configuration's. This index is for the tests and tools.
 *
 * Written with `zod/mini`, whose functions tree-shake: the Lambda bundles carry only the
 * validators they use (full zod would add about 440 KB to each).
 */
export * from './api';
export * from './fields';
export * from './jobs';
export * from './openai';
export * from './query';
export * from './submit';
export * from './task';
export * from './upstream';
export * from './view';
