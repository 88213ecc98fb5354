// Kept so existing relative imports inside the store keep working; the error lives with the contracts.
export { StoreError, type StoreErrorCode } from './contracts/errors.js';
