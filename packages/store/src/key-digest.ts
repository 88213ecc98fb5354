// Kept so existing relative imports inside the store keep working; the digest is part of the contracts.
export { certificateKeyDigest, keyDigest } from './contracts/key-digest.js';
