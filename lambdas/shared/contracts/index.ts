/**
 * Every shape that crosses a boundary of the gateway: the client API, the task record, the
 * upstream dialect, the queue messages. Handlers, the local runtime, the OpenAPI document
 * and the tests all take their shapes from here.
 *
 * One module per concern, and Lambda code imports the module it needs rather than this
 * index: a module's schemas are built when it loads, so a Lambda builds only those it uses
 * (and only the submit contract brings in json5). This index is for the tests and tools.
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
