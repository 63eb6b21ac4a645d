'use strict';
// CommonJS entry: `require('@mags/sdk')` returns the Mags class itself (as `@magpiecloud/mags` does),
// with every other export attached, so both `const Mags = require(...)` and
// `const { Mags, NotFoundError } = require(...)` work. The code is the CommonJS build in ./out.
const sdk = require('./out/index.js');
module.exports = Object.assign(sdk.Mags, sdk, { default: sdk.Mags });
