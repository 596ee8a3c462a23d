// globalSetup of the `vm` project: its tests program IPVS, which only the VM's kernel has.
export default function setup(): void {
  if (process.env.CNMD_IN_VM !== '1') {
    throw new Error('the vm project runs inside the IPVS VM: use `npm run test:vm`, which boots it');
  }
}
