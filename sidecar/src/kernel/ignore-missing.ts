/** Deleting what is already gone is fine when undoing: SIDECAR_LINK_NOT_FOUND is not a failure. */
export async function ignoreMissing(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if ((err as { code?: string }).code !== 'SIDECAR_LINK_NOT_FOUND') throw err;
  }
}
