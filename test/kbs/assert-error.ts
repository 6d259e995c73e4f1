/** Moved to test/helpers/assert-error.ts; this alias stays only until the last importer moves over. */
export {
  onlyTyped,
  rejectsCode as rejectsReason,
  throwsCode as throwsReason,
} from '../helpers/assert-error.js';
