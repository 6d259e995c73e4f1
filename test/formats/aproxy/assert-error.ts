/** Moved to test/helpers/assert-error.ts; this alias stays only until the last importer moves over. */
export { isMalformed, isTyped, rejectsCode, throwsCode } from '../../helpers/assert-error.js';
