/** The OpenAPI document's file among the console's: lib/console-assets.ts writes it, the handler serves it. */
export const openApiAsset = 'openapi.json';
