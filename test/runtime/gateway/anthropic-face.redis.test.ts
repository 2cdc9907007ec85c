import { anthropicFaceContract } from './anthropic-face.contract.ts';

anthropicFaceContract('redis');
