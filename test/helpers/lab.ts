// The lab harness for e2e tests (the code lives under lab/, compiled for `npm run lab`):
//   const lab = await Lab.start({ mode: 'translate' }); await lab.curl('c1v6'); await lab.stop();
export * from '../../lab/address-plan.js';
export * from '../../lab/lab.js';
export * from '../../lab/capture.js';
export * from '../../lab/clients.js';
export * from '../../lab/topology.js';
export { listNetns } from '../../lab/netns.js';
