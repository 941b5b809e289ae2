// libpcap through pkg-config (Debian: libpcap-dev).
#include <pcap/pcap.h>
