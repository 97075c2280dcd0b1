set title 'cpu: throughput of a CPU-bound handler'
set xlabel 'concurrent connections'
set ylabel 'requests/s'
set key outside right
set grid
set logscale x 10
set yrange [0:*]
set terminal svg size 800,450 dynamic
set output 'cpu_rps_vs_conns.svg'
plot 'cpu_rps_vs_conns.dat' index 0 using 1:2 with linespoints lw 2 title 'eddy-inline', 'cpu_rps_vs_conns.dat' index 1 using 1:2 with linespoints lw 2 title 'eddy-offload', 'cpu_rps_vs_conns.dat' index 2 using 1:2 with linespoints lw 2 title 'threaded'
set terminal pngcairo size 800,450
set output 'cpu_rps_vs_conns.png'
plot 'cpu_rps_vs_conns.dat' index 0 using 1:2 with linespoints lw 2 title 'eddy-inline', 'cpu_rps_vs_conns.dat' index 1 using 1:2 with linespoints lw 2 title 'eddy-offload', 'cpu_rps_vs_conns.dat' index 2 using 1:2 with linespoints lw 2 title 'threaded'
