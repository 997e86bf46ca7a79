#!/usr/bin/env node
// Rebuilds the committed artifacts ({abi, bytecode} JSON) from the .sol sources with solc-js
// (npm `solc` 0.8.37), so tests and benches need no Solidity toolchain:
//   npm install --no-save solc@0.8.37 && node testdata/chain/watch/build.cjs
const fs = require('fs');
const path = require('path');
const solc = require('solc');
const dir = __dirname;
for (const name of ['Aggregator', 'LendingPool']) {
  const input = {
    language: 'Solidity',
    sources: { [`${name}.sol`]: { content: fs.readFileSync(path.join(dir, `${name}.sol`), 'utf8') } },
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: 'paris',
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
    },
  };
  const out = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (out.errors || []).filter((e) => e.severity === 'error');
  if (errors.length) {
    console.error(errors.map((e) => e.formattedMessage).join('\n'));
    process.exit(1);
  }
  const c = out.contracts[`${name}.sol`][name];
  const artifact = { abi: c.abi, bytecode: '0x' + c.evm.bytecode.object };
  fs.writeFileSync(path.join(dir, `${name}.json`), JSON.stringify(artifact, null, 1) + '\n');
  console.log(`${name}.json: ${c.evm.bytecode.object.length / 2} bytes of init code (solc ${solc.version()})`);
}
