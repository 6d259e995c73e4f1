/**
 * A simulated Azure confidential VM (SEV-SNP + paravisor + vTPM) for tests and demos: HCL reports over
 * the SNP simulator's reports and software vTPM quotes, in Trustee's `az-snp-vtpm` evidence forms.
 */
export { encodeHclReport, SimAzureVm, type SimAzureVmOptions } from './vm.js';
