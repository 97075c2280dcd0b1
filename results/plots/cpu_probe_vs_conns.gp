set title 'cpu: latency of other requests'
set xlabel 'concurrent connections'
set ylabel '/plaintext p99 beside it (ms)'
set key outside right
set grid
set logscale x 10
set logscale y 10
set terminal svg size 800,450 dynamic
set output 'cpu_probe_vs_conns.svg'
plot 'cpu_probe_vs_conns.dat' index 0 using 1:2 with linespoints lw 2 title 'eddy-inline', 'cpu_probe_vs_conns.dat' index 1 using 1:2 with linespoints lw 2 title 'eddy-offload', 'cpu_probe_vs_conns.dat' index 2 using 1:2 with linespoints lw 2 title 'threaded'
set terminal pngcairo size 800,450
set output 'cpu_probe_vs_conns.png'
plot 'cpu_probe_vs_conns.dat' index 0 using 1:2 with linespoints lw 2 title 'eddy-inline', 'cpu_probe_vs_conns.dat' index 1 using 1:2 with linespoints lw 2 title 'eddy-offload', 'cpu_probe_vs_conns.dat' index 2 using 1:2 with linespoints lw 2 title 'threaded'
