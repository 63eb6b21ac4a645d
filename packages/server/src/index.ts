export type * from './runtime/driver.js';
export { instancePrefix } from './runtime/instance.js';
