// The payment provider's pages (checkout, the customer portal) open in a new
// tab, opened inside the click so no popup blocker objects. This tab stays
// and shows the new plan or credits live when the provider's webhook lands.
export async function inProviderTab(open: (navigate: (url: string) => void) => Promise<string>): Promise<void> {
  const tab = window.open('', '_blank');
  try {
    await open((url) => (tab ? tab.location.assign(url) : window.location.assign(url)));
  } catch (error) {
    tab?.close();
    throw error;
  }
}

export const problemText = (error: unknown) => (error instanceof Error ? error.message : String(error));
