import { parseModels, parseUpstreams, seedCatalogModels } from '../lambdas/shared/catalog';
import { openApiDocument } from '../lambdas/shared/openapi';

/**
 * `npm run openapi`: the OpenAPI document of the client API, generated from the contracts,
 * for the catalog in `MODELS` (with its `UPSTREAMS`), or the seed's three models when unset.
 * The gateway serves the same document at `GET /openapi.json`.
 */
const { MODELS, UPSTREAMS } = process.env;
const models = MODELS ? parseModels(MODELS, UPSTREAMS ? parseUpstreams(UPSTREAMS) : []) : seedCatalogModels('default');
process.stdout.write(`${JSON.stringify(openApiDocument(models), null, 2)}\n`);
