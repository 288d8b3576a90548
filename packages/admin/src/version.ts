/** Version of @waygate/admin, reported by GET /api/status. Kept in step with package.json. */
export const ADMIN_VERSION = '0.1.0'
