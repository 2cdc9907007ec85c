import { gatewayContract } from './gateway.contract.ts';

gatewayContract('redis');
