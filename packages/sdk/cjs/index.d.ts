import * as sdk from './out/index.js';
declare const Mags: typeof sdk.Mags & typeof sdk & { default: typeof sdk.Mags };
export = Mags;
