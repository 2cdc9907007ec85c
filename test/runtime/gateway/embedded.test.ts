import { gatewayContract } from './gateway.contract.ts';

gatewayContract('embedded');
