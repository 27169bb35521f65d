/**
 * The dedicated silent redirect page (`/silent`): it only hands the provider's answer to the
 * parent, as the README tells apps to do. Nothing else runs here.
 */
import { handleSilentCallback } from '../../packages/tessera/src/authorities/oidc.ts';

document.title = handleSilentCallback() ? 'handed over' : 'not a renewal frame';
