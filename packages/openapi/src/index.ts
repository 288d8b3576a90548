export { applyWaygateToSpec, snapshotOf, nextWindowChange, DEFAULT_EXCLUDE_PREFIXES } from './transform.js'
export type { WaygateSnapshot, ApplyWaygateOptions } from './transform.js'
export { createOpenApiView } from './live-view.js'
export type { OpenApiView, DocsStatus, DocsMaintenanceItem } from './live-view.js'
export { toOpenApiPath } from './path-mapping.js'
export { waygateOpenApi, waygateOpenApi as default } from './plugin.js'
export type {
  WaygateOpenApi,
  WaygateOpenApiOptions,
  SwaggerUiParts,
  SwaggerUiTheme,
  SwaggerUiThemeFile,
  TransformSpecification,
  WaygateSwaggerUiOptions
} from './plugin.js'
export { bannerScript, BANNER_STYLE, BANNER_SCRIPT_FILE, BANNER_STYLE_FILE, STATUS_PATH } from './banner.js'
